package tests

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestMakeInstall runs make install into a DESTDIR with another PREFIX: the
// binaries land in PREFIX/bin, the units start them from there and read
// their environment from SYSCONFDIR/default, where the examples go; a
// second install keeps an environment file the operator edited and puts
// the example beside it.
func TestMakeInstall(t *testing.T) {
	if _, err := exec.LookPath("make"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("make install needs make, and CI runs this: %v", err)
		}
		t.Skipf("make install needs make: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	install := func() string {
		t.Helper()
		cmd := exec.Command("make", "--no-print-directory", "install", "DESTDIR="+dest, "PREFIX=/opt/weft",
			"SYSCONFDIR=/etc/weft", "BIN="+t.TempDir())
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make install: %v\n%s", err, out)
		}
		return string(out)
	}
	install()
	for _, b := range []string{"weft-controlplane", "weft-agent", "weftctl"} {
		fi, err := os.Stat(filepath.Join(dest, "opt/weft/bin", b))
		if err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v, %v; want an executable in PREFIX/bin", b, fi, err)
		}
	}
	for _, u := range units {
		name := strings.TrimSuffix(u.file, ".service")
		text, err := os.ReadFile(filepath.Join(dest, "etc/systemd/system", u.file))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"ExecStart=/opt/weft/bin/" + u.binary + " ", "EnvironmentFile=-/etc/weft/default/" + name + "\n"} {
			if !strings.Contains(string(text), want) {
				t.Errorf("%s: no %q:\n%s", u.file, want, text)
			}
		}
		if strings.Contains(string(text), unitBinDir) {
			t.Errorf("%s still starts from %s", u.file, unitBinDir)
		}
		env := filepath.Join(dest, "etc/weft/default", name)
		if _, err := os.Stat(env); err != nil {
			t.Errorf("the example environment of %s: %v", name, err)
		}
		if err := os.WriteFile(env, []byte("WEFT_LOG_LEVEL=debug\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	out := install()
	for _, u := range units {
		name := strings.TrimSuffix(u.file, ".service")
		env := filepath.Join(dest, "etc/weft/default", name)
		if b, err := os.ReadFile(env); err != nil || string(b) != "WEFT_LOG_LEVEL=debug\n" {
			t.Errorf("a second install replaced the edited %s: %q, %v", env, b, err)
		}
		if _, err := os.Stat(env + ".example"); err != nil || !strings.Contains(out, "kept "+env) {
			t.Errorf("a second install: want %s.example and a line saying %s was kept; got %v\n%s", env, env, err, out)
		}
	}
}
