package configfile

import (
	"errors"
	"io/fs"
	"maps"
	"strings"
	"testing"
)

func TestReadEnvFile(t *testing.T) {
	tests := []struct {
		name, content string
		want          map[string]string
		err           string
	}{
		{"keys, comments and quotes", "# secrets of prod\n\nA=1\n  B = two words \nC=\"quoted # not a comment\"\nD='single'\nE=\nF=\"unbalanced'\nG=a=b\n",
			map[string]string{"A": "1", "B": "two words", "C": "quoted # not a comment", "D": "single", "E": "", "F": "\"unbalanced'", "G": "a=b"}, ""},
		{"a later key wins", "A=1\nA=2\n", map[string]string{"A": "2"}, ""},
		{"a line without =", "# ok\nTENANT acme\n", nil, "prod.env:2: want KEY=VALUE, KEY letters, digits and _"},
		{"a bad key", "A=1\n\n1A=2\n", nil, "prod.env:3: want KEY=VALUE"},
		{"an empty key", "=x\n", nil, "prod.env:1: want KEY=VALUE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inDir(t, map[string]string{"prod.env": tt.content})
			got, err := ReadEnvFile("prod.env")
			if tt.err != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %s", err, tt.err)
				}
				return
			}
			if err != nil || !maps.Equal(got, tt.want) {
				t.Errorf("ReadEnvFile = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestReadEnvFileNone(t *testing.T) {
	got, err := ReadEnvFile("")
	if err != nil || got == nil || len(got) != 0 {
		t.Errorf(`ReadEnvFile("") = %v, %v; want no variables`, got, err)
	}
	inDir(t, nil)
	if _, err := ReadEnvFile("nope.env"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: err = %v, want fs.ErrNotExist", err)
	}
}
