package state

import (
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	agentv1 "github.com/weft-dev/weft/proto/weft/agent/v1"
)

func TestSaveLoad(t *testing.T) {
	d, err := Open(filepath.Join(t.TempDir(), "state"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := d.Load()
	if err != nil || got != nil {
		t.Fatalf("Load of an empty dir = %v, %v; want nil, nil", got, err)
	}
	want := &agentv1.Snapshot{Revision: 7, Hash: "h", Packages: []*agentv1.Package{{Name: "p", Files: []*agentv1.SourceFile{{Name: "a.go", Content: []byte("package p")}}}}}
	if err := d.Save(want); err != nil {
		t.Fatal(err)
	}
	got, err = d.Load()
	if err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("Load = %v, want %v", got, want)
	}
}

func TestLoadRefusesDamage(t *testing.T) {
	tests := []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"flipped byte", func(b []byte) []byte { b[len(b)-1] ^= 0xff; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-3] }},
		{"not a snapshot", func([]byte) []byte { return []byte("hello") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			if err := d.Save(&agentv1.Snapshot{Revision: 3, Hash: "abc"}); err != nil {
				t.Fatal(err)
			}
			name := filepath.Join(d.Path(), fileName)
			b, err := os.ReadFile(name)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(name, tt.damage(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if s, err := d.Load(); err == nil {
				t.Fatalf("Load of a damaged file = %v, nil; want an error", s)
			}
		})
	}
}
