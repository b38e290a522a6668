package scheduler

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// RecordFile is the file in the state directory that records, per job, the
// newest firing the agent ran, so that a run_missed job can run the firing
// it missed while the agent was down.
const RecordFile = "jobs.json"

const saveEvery = time.Second // a dirty record is written at most this often

// record is the newest firing each job ran on this agent.
type record struct {
	path string // "" keeps no record
	log  *slog.Logger

	mu      sync.Mutex
	firings map[string]int64 // job → newest firing ran, Unix ms
	dirty   bool
}

// recordFile is the JSON form of the record.
type recordFile struct {
	// LastFiring maps a job to the newest firing it ran, in Unix ms.
	LastFiring map[string]int64 `json:"last_firing_unix_ms"`
}

// loadRecord reads the record in dir. A missing file is an empty record; a
// damaged one is logged and ignored.
func loadRecord(dir string, log *slog.Logger) *record {
	r := &record{log: log, firings: map[string]int64{}}
	if dir == "" {
		return r
	}
	r.path = filepath.Join(dir, RecordFile)
	b, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return r
	}
	var f recordFile
	if err == nil {
		err = json.Unmarshal(b, &f)
	}
	if err != nil {
		log.Warn("ignoring the record of job firings; missed firings will not be run", "file", r.path, "err", err)
		return r
	}
	for job, ms := range f.LastFiring {
		r.firings[job] = ms
	}
	return r
}

// last returns the newest firing of job that ran here.
func (r *record) last(job string) (time.Time, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ms, ok := r.firings[job]
	if !ok {
		return time.Time{}, false
	}
	return time.UnixMilli(ms).UTC(), true
}

// ran notes that firing at of job runs here.
func (r *record) ran(job string, at time.Time) {
	if r.path == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if ms := at.UnixMilli(); ms > r.firings[job] {
		r.firings[job] = ms
		r.dirty = true
	}
}

// keepOnly forgets the jobs that this agent no longer runs.
func (r *record) keepOnly(jobs map[string]*entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for job := range r.firings {
		if jobs[job] == nil {
			delete(r.firings, job)
			r.dirty = r.path != ""
		}
	}
}

// run returns a loop that writes the record every saveEvery while it is
// dirty, until ctx ends.
func (r *record) run(clock Clock) func(context.Context) {
	return func(ctx context.Context) {
		if r.path == "" {
			return
		}
		for {
			t := clock.NewTimer(saveEvery)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C():
				r.save()
			}
		}
	}
}

// save writes the record when it changed, logging a failure.
func (r *record) save() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.dirty || r.path == "" {
		return
	}
	b, err := json.Marshal(recordFile{LastFiring: r.firings})
	if err == nil {
		err = writeAtomic(r.path, b)
	}
	if err != nil {
		r.log.Warn("could not write the record of job firings", "file", r.path, "err", err)
		return
	}
	r.dirty = false
}

// writeAtomic replaces name with b, so that a crash leaves the old file or
// the new one, never a mix.
func writeAtomic(name string, b []byte) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, filepath.Base(name)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, name)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write %s: %w", name, err)
	}
	return nil
}
