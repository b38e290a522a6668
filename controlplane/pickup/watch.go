package pickup

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"google.golang.org/grpc/status"

	"github.com/weft-dev/weft/controlplane/api"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// Subdirectories of the pickup directory that hold what was picked up.
const (
	DeployedDir = ".deployed"
	FailedDir   = ".failed"
)

// Watcher deploys what is dropped into a directory: a .go file or a
// package directory is deployed, a config file (.yaml, .yml, .json) is
// imported, without pruning, its ${VAR}s from the control plane's
// environment. An entry is picked up once it has stayed the same for one
// poll, so a file still being copied is not read half-written. Afterwards
// it moves to .deployed/, or to .failed/ beside a NAME.error file saying
// why; either way the log says what was picked up, and the history names
// it as the author.
type Watcher struct {
	dir      string
	deployer Deployer
	importer Importer
	interval time.Duration
	log      *slog.Logger

	last map[string]string // entry name -> stamp at the previous poll
}

// NewWatcher returns a watcher of dir, polling every interval.
func NewWatcher(dir string, d Deployer, im Importer, interval time.Duration, log *slog.Logger) (*Watcher, error) {
	for _, sub := range []string{"", DeployedDir, FailedDir} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("pickup directory: %w", err)
		}
	}
	return &Watcher{dir: dir, deployer: d, importer: im, interval: interval, log: log.With("component", "pickup", "dir", dir), last: map[string]string{}}, nil
}

// Run polls until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	w.log.Info("watching the pickup directory")
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		w.Poll(ctx)
	}
}

// Poll looks at the directory once and deploys every entry that has stayed
// the same since the previous poll.
func (w *Watcher) Poll(ctx context.Context) {
	entries, err := os.ReadDir(w.dir)
	if err != nil {
		w.log.Error("cannot read the pickup directory", "err", err)
		return
	}
	now := map[string]string{}
	for _, e := range entries {
		name := e.Name()
		if ignored(name) || !(e.IsDir() || strings.HasSuffix(name, ".go") || isConfigFile(name)) {
			continue
		}
		stamp, err := stampOf(filepath.Join(w.dir, name))
		if err != nil {
			continue // removed while we looked
		}
		if prev, ok := w.last[name]; !ok || prev != stamp {
			now[name] = stamp
			continue
		}
		w.pick(ctx, name)
	}
	w.last = now
}

func (w *Watcher) pick(ctx context.Context, name string) {
	path := filepath.Join(w.dir, name)
	ctx = api.WithCaller(ctx, "pickup:"+name)
	var (
		result string
		err    error
	)
	if isConfigFile(name) && !w.isDir(path) {
		var res *adminv1.ImportConfigResponse
		if res, err = ImportFiles(ctx, w.importer, w.dir, []string{path}, Getenv); err == nil {
			result = "imported: " + ImportSummary(res)
		}
	} else {
		var res *adminv1.DeployResponse
		if res, err = w.deploy(ctx, path); err == nil {
			result = "deployed: " + Summary(res)
		}
	}
	if ctx.Err() != nil {
		return // shutting down: leave it to be picked up on the next start
	}
	stamp := time.Now().UTC().Format("20060102T150405.000Z")
	if err != nil {
		w.log.Error("picked up and refused", "entry", name, "err", err)
		dst := filepath.Join(w.dir, FailedDir, stamp+"-"+name)
		w.move(path, dst)
		// 0600: a refusal may quote a value of the file.
		if werr := os.WriteFile(dst+".error", []byte(err.Error()+"\n"), 0o600); werr != nil {
			w.log.Error("cannot write the refusal next to the file", "err", werr)
		}
		return
	}
	w.log.Info("picked up", "entry", name, "result", result)
	w.move(path, filepath.Join(w.dir, DeployedDir, stamp+"-"+name))
}

// deploy deploys the package at path.
func (w *Watcher) deploy(ctx context.Context, path string) (*adminv1.DeployResponse, error) {
	src, err := ReadPath(path)
	if err != nil {
		return nil, err
	}
	res, err := w.deployer.Deploy(ctx, &adminv1.DeployRequest{Packages: []*adminv1.PackageSource{src}})
	if err != nil {
		return nil, fmt.Errorf("%s", status.Convert(err).Message())
	}
	return res, nil
}

// isDir reports whether path is a directory (a package directory named
// like a config file).
func (w *Watcher) isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

func (w *Watcher) move(from, to string) {
	if err := os.Rename(from, to); err != nil {
		// Left in place it would be deployed again at every poll.
		w.log.Error("cannot move a picked up entry out of the way; remove it by hand", "entry", from, "err", err)
	}
}

// ignored reports names an editor or a copy in progress leaves behind, the
// watcher's own subdirectories, and names starting with _ (files a config
// file includes, kept out of the way).
func ignored(name string) bool {
	return strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || strings.HasSuffix(name, "~") ||
		strings.HasSuffix(name, ".tmp") || strings.HasSuffix(name, ".swp") || strings.HasSuffix(name, "_test.go")
}

// stampOf summarises an entry's size and times, and those of a directory's
// files, so that a change between two polls shows.
func stampOf(path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return fmt.Sprintf("%d/%d", fi.Size(), fi.ModTime().UnixNano()), nil
	}
	entries, err := os.ReadDir(path)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s:%d/%d;", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	return b.String(), nil
}
