//go:build linux

package confine

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sealedCommand makes the test binary a child that confines and seals
// itself, then tries what the filter must refuse (see TestSeal).
const sealedCommand = "sealed-child"

func TestMain(m *testing.M) {
	if len(os.Args) > 2 && os.Args[1] == sealedCommand {
		os.Exit(sealedChild(os.Args[2], os.Args[3]))
	}
	os.Exit(m.Run())
}

// sealedChild confines itself, then tries to read secret, write a file,
// start a program and dial addr, and prints what each attempt got, as a
// JSON object, on its standard output, which it still has.
func sealedChild(secret, addr string) int {
	if err := Self(Limits{CPU: 10 * time.Second, Memory: 256 << 20}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 3
	}
	if err := Seal(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 4
	}
	got := map[string]string{}
	outcome := func(what string, err error) {
		got[what] = fmt.Sprint(err)
	}
	b, err := os.ReadFile(secret)
	outcome("read", err)
	got["content"] = string(b)
	_, err = os.ReadFile("/proc/self/environ")
	outcome("environ", err)
	_, err = os.Create(filepath.Join(filepath.Dir(secret), "written"))
	outcome("create", err)
	outcome("exec", exec.Command("/bin/true").Run())
	_, err = net.DialTimeout("tcp", addr, 5*time.Second)
	outcome("dial", err)
	if err := json.NewEncoder(os.Stdout).Encode(got); err != nil {
		return 1
	}
	return 0
}

// TestSeal runs a child that seals itself and then tries to read a file,
// create one, run a program and open a connection: each fails with
// "permission denied", and the child still writes its answer.
func TestSeal(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret.key")
	if err := os.WriteFile(secret, []byte("never-read"), 0o600); err != nil {
		t.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()

	cmd := exec.CommandContext(t.Context(), "/proc/self/exe", sealedCommand, secret, lis.Addr().String())
	cmd.Env = []string{}
	Command(cmd)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, stderr.String())
	}
	var got map[string]string
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("child's answer %q: %v", out, err)
	}
	for _, what := range []string{"read", "environ", "create", "exec", "dial"} {
		if !strings.Contains(got[what], "permission denied") {
			t.Errorf("%s: %q, want permission denied", what, got[what])
		}
	}
	if got["content"] != "" {
		t.Errorf("the child read %q", got["content"])
	}
	if _, err := os.Stat(filepath.Join(dir, "written")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the child created a file: %v", err)
	}
}
