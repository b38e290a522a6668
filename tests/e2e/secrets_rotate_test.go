package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store/storetest"
	"github.com/weft-dev/weft/proto/marks"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
	"github.com/weft-dev/weft/tests/testenv"
)

// TestSecretsKeyRotation rotates the secrets key with weftctl while an
// agent serves a channel protected by a basic_auth definition and a
// client keeps calling it: every call with the right password answers
// 200 before, during and after; the revision does not move, so the agent
// stays in sync with nothing new to apply; weftctl security get still
// shows the secret redacted; and after a restart the control plane opens
// everything (its CA's key, the password it sends the agent) and seals a
// changed password with the new key.
func TestSecretsKeyRotation(t *testing.T) {
	const password = "rotate-me-0123"
	cp := testenv.StartControlPlane(t, storetest.SQLite(t).DSN)
	agent := testenv.StartAgent(t, cp, "rotate-1")
	e := &env{cp: cp, agents: []*testenv.Agent{agent}}
	e.ctlOK(t, "deploy", filepath.Join(testenv.ModuleRoot(t), "deploy", "examples", "hello"), "--wait")
	e.ctlOK(t, "security", "create", "shop", "--kind", "basic_auth", "--username", "shop", "--password", password)
	e.ctlOK(t, "channel", "create", channelName, "--path", channelPath, "--service", exampleService, "--security", "shop")
	e.sync(t)
	rev := cp.DesiredRevision(t)

	url := agent.URL(channelPath)
	wantStatus := func(t *testing.T, when, pw string, want int) {
		t.Helper()
		if got, err := callBasic(url, "shop", pw); err != nil || got != want {
			t.Fatalf("%s, password %q: %d, %v; want %d", when, pw, got, err, want)
		}
	}
	wantStatus(t, "before the rotation", password, http.StatusOK)
	wantStatus(t, "before the rotation", "wrong", http.StatusUnauthorized)

	// A client calls all through the rotations.
	stop := make(chan struct{})
	var (
		caller   sync.WaitGroup
		mu       sync.Mutex
		calls    int
		failures []string
	)
	caller.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			code, err := callBasic(url, "shop", password)
			mu.Lock()
			calls++
			if err != nil || code != http.StatusOK {
				failures = append(failures, fmt.Sprintf("%d %v", code, err))
			}
			mu.Unlock()
		}
	})
	var first adminv1.RotateKeyResponse
	testenv.CtlJSON(t, cp, &first, "secrets", "rotate-key")
	// The password and the CA's key.
	if first.GetKeyId() <= 0 || first.GetResealed() != 2 {
		t.Errorf("weftctl secrets rotate-key -o json = %v; want a key id and 2 values re-sealed", &first)
	}
	second := e.ctlOK(t, "secrets", "rotate-key")
	if want := fmt.Sprintf("data key k%d made: 2 secret values re-sealed with it", first.GetKeyId()+1); !strings.Contains(second.Stdout, want) {
		t.Errorf("weftctl secrets rotate-key: %s; want %q", second, want)
	}
	close(stop)
	caller.Wait()
	if calls == 0 || len(failures) > 0 {
		t.Errorf("%d calls during the rotations, %d failed: %v", calls, len(failures), failures)
	}
	t.Logf("%d calls during the rotations", calls)

	if got := cp.DesiredRevision(t); got != rev {
		t.Errorf("revision moved from %d to %d", rev, got)
	}
	testenv.AwaitAgentsSynced(t, cp, rev, time.Minute, agent.ID)
	wantStatus(t, "after the rotations", password, http.StatusOK)
	wantStatus(t, "after the rotations", "wrong", http.StatusUnauthorized)
	wantRedactedGet(t, e, password)
	audit := e.ctlOK(t, "audit", "--kind", "secrets-key")
	if n := strings.Count(audit.Stdout, "rotated"); n != 2 {
		t.Errorf("weftctl audit --kind secrets-key shows %d rotations, want 2:\n%s", n, audit.Stdout)
	}
	wantNoSecret(t, "the control plane's log", readLog(t, cp.LogPath()), password)

	// After a restart the CA's key and the password open, and a new
	// password is sealed (with the newest key) and served.
	cp.Restart(t)
	testenv.AwaitAgentsSynced(t, cp, rev, time.Minute, agent.ID)
	wantStatus(t, "after a restart", password, http.StatusOK)
	wantRedactedGet(t, e, password)
	const newPassword = "rotated-too-4567"
	e.ctlOK(t, "security", "update", "shop", "--password", newPassword)
	e.sync(t)
	wantStatus(t, "after the password changed", newPassword, http.StatusOK)
	wantStatus(t, "after the password changed", password, http.StatusUnauthorized)
	wantRedactedGet(t, e, newPassword)
}

// callBasic POSTs Ada's name to url with HTTP basic credentials and
// returns the status. It does not touch a testing.T, so goroutines may
// call it.
func callBasic(url, user, password string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(adaInput))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, password)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, err = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, err
}

// wantRedactedGet requires weftctl security get shop to show the
// password redacted, not in clear.
func wantRedactedGet(t *testing.T, e *env, password string) {
	t.Helper()
	res := e.ctlOK(t, "security", "get", "shop")
	if !strings.Contains(res.Stdout, marks.Redacted) {
		t.Errorf("weftctl security get shop does not show the password redacted:\n%s", res.Stdout)
	}
	wantNoSecret(t, "weftctl security get shop", res.Stdout, password)
}

// wantNoSecret fails t when text, from where, holds secret.
func wantNoSecret(t *testing.T, where, text, secret string) {
	t.Helper()
	if strings.Contains(text, secret) {
		t.Errorf("%s holds the secret %q", where, secret)
	}
}
