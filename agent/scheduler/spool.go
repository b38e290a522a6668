package scheduler

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"google.golang.org/protobuf/encoding/protojson"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

// SpoolFile is the file in the state directory that holds the runs
// waiting to be reported while the control plane is out of reach, so that
// an agent restarted meanwhile still reports them.
const SpoolFile = "reports.json"

// spool keeps the waiting runs on disk. It is written only after a report
// failed, never while reports flow, and removed once the queue is empty.
type spool struct {
	path string // "" keeps nothing
	log  *slog.Logger
	held bool // the file exists
}

func newSpool(dir string, log *slog.Logger) *spool {
	if dir == "" {
		return &spool{log: log}
	}
	return &spool{path: filepath.Join(dir, SpoolFile), log: log}
}

// load returns the runs a previous process left unreported. A damaged
// file is set aside as SpoolFile.bad and logged: it must not stop jobs.
func (s *spool) load() []*agentv1.JobRun {
	if s.path == "" {
		return nil
	}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	var kept agentv1.ReportRunsRequest
	if err == nil {
		err = protojson.Unmarshal(b, &kept)
	}
	if err != nil {
		bad := s.path + ".bad"
		rerr := os.Rename(s.path, bad)
		s.log.Error("the unreported job runs kept on disk are damaged; set aside", "file", s.path, "moved_to", bad, "err", err, "move_err", rerr)
		return nil
	}
	s.held = true
	s.log.Info("reporting job runs a previous run of the agent left unreported", "runs", len(kept.GetRuns()), "file", s.path)
	return kept.GetRuns()
}

// save writes runs, replacing what the file held, and reports whether
// the file now holds them.
func (s *spool) save(runs []*agentv1.JobRun) bool {
	if s.path == "" || (len(runs) == 0 && !s.held) {
		return true
	}
	if len(runs) == 0 {
		return s.remove()
	}
	b, err := protojson.Marshal(&agentv1.ReportRunsRequest{Runs: runs})
	if err == nil {
		err = writeAtomic(s.path, b)
	}
	if err != nil {
		s.log.Warn("could not keep the unreported job runs on disk", "file", s.path, "runs", len(runs), "err", err)
		return false
	}
	s.held = true
	return true
}

// remove deletes the file once nothing waits, and reports whether it is
// gone.
func (s *spool) remove() bool {
	if s.path == "" || !s.held {
		return true
	}
	if err := os.Remove(s.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("could not remove the reported job runs from disk", "file", s.path, "err", err)
		return false
	}
	s.held = false
	return true
}
