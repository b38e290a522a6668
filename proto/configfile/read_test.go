package configfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// inDir writes files (by path, relative) into a new directory and makes it
// the working directory, so that Read and its errors use short paths.
func inDir(t *testing.T, files map[string]string) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(dir)
}

// checkErrLines checks that err holds one line for each of want, in order,
// each starting with its want.
func checkErrLines(t *testing.T, err error, want []string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want\n%s", strings.Join(want, "\n"))
	}
	got := strings.Split(err.Error(), "\n")
	ok := len(got) == len(want)
	for i := 0; ok && i < len(got); i++ {
		ok = strings.HasPrefix(got[i], want[i])
	}
	if !ok {
		t.Errorf("err =\n%s\nwant lines starting\n%s", err, strings.Join(want, "\n"))
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{"an unknown field", "version: 1\nchannels:\n- name: orders\n  pathh: /orders\n  service: orders.place\n",
			[]string{`weft.yaml:4: channel "orders": unknown field "pathh"`}},
		{"an unknown field in a nested message", "jobs:\n- name: sweep\n  interval:\n    minute: 5\n",
			[]string{`weft.yaml:4: job "sweep": interval: unknown field "minute"`}},
		{"an unknown field in a list's message", "packages:\n- name: p\n  files:\n  - name: a.go\n    txt: package p\n",
			[]string{`weft.yaml:5: package "p": files[0]: unknown field "txt"`}},
		{"a wrong type", "outgoing:\n- name: crm\n  address: https://crm.example\n  timeout_ms: soon\n",
			[]string{`weft.yaml:4: outgoing "crm": timeout_ms: invalid value for int64 field timeout_ms: "soon"`}},
		{"a wrong type in a nested message", "jobs:\n- name: sweep\n  interval:\n    hours: 1\n    minutes: five\n",
			[]string{`weft.yaml:5: job "sweep": interval.minutes: invalid value for int64 field minutes`}},
		{"wrong types in a list", "channels:\n- name: a\n  methods:\n  - GET\n  - [POST]\n  - 1\n  -\n",
			[]string{
				`weft.yaml:5: channel "a": methods[1]: want string, not a list`,
				`weft.yaml:6: channel "a": methods[2]: want string, not 1`,
				`weft.yaml:7: channel "a": methods[3]: want string, not null`,
			}},
		{"a list that is not one", "channels:\n- name: a\n  methods: {GET: true}\n",
			[]string{`weft.yaml:3: channel "a": methods: want a list, not a mapping`}},
		{"a wrong type in a map", "jobs:\n- name: j\n  agent_labels:\n    zone: eu\n    tier: [1]\n",
			[]string{`weft.yaml:5: job "j": agent_labels["tier"]: want string, not a list`}},
		{"a map that is not one", "jobs:\n- name: j\n  agent_labels: [tier]\n",
			[]string{`weft.yaml:3: job "j": agent_labels: want a mapping, not a list`}},
		{"a message that is not one", "jobs:\n- name: j\n  interval: 5\n",
			[]string{`weft.yaml:3: job "j": interval: want a mapping of fields, not 5`}},
		{"list elements that are no messages", "packages:\n- name: p\n  files:\n  - a.go\n  - name: b.go\n  -\n",
			[]string{
				`weft.yaml:4: package "p": files[0]: want a mapping of fields, not "a.go"`,
				`weft.yaml:6: package "p": files[2]: want a mapping of fields, not null`,
			}},
		{"a bad timestamp", "jobs:\n- name: j\n  start_at: yesterday\n",
			[]string{`weft.yaml:3: job "j": start_at: `}},
		{"a bad bool", "channels:\n- name: a\n  active: maybe\n",
			[]string{`weft.yaml:3: channel "a": active: `}},
		{"every problem of every object", "channels:\n- name: a\n  pathh: /a\n  timeout_ms: x\n- name: b\n  sevice: s\nbogus: 1\n",
			[]string{
				`weft.yaml:3: channel "a": unknown field "pathh"`,
				`weft.yaml:4: channel "a": timeout_ms: `,
				`weft.yaml:6: channel "b": unknown field "sevice"`,
				`weft.yaml:7: unknown field "bogus" (want version, include, security, outgoing, channels, jobs or packages)`,
			}},
		{"an object that is no mapping", "channels:\n- orders\n",
			[]string{`weft.yaml:2: channel (no name): want a mapping of fields, not "orders"`}},
		{"a kind that is no list", "channels:\n  name: a\n",
			[]string{`weft.yaml:1: channels: want a list of objects`}},
		{"a top that is no mapping", "- a\n",
			[]string{`weft.yaml:1: want a mapping of version, include,`}},
		{"a key given twice at the top", "channels: []\nversion: 1\nchannels: []\n",
			[]string{`weft.yaml:3: channels given twice (also at line 1)`}},
		{"a field given twice", "channels:\n- name: a\n  path: /a\n  path: /b\n",
			[]string{`weft.yaml:4: channel "a": field "path" given twice (also at line 3)`}},
		{"a map key given twice", "outgoing:\n- name: o\n  headers:\n    X-A: a\n    X-A: b\n",
			[]string{`weft.yaml:5: outgoing "o": headers: key "X-A" given twice (also at line 4)`}},
		{"text and content", "packages:\n- name: p\n  files:\n  - name: a.go\n    content: cGFja2FnZSBwCg==\n    text: package p\n",
			[]string{`weft.yaml:6: package "p": files[0]: give content or text, not both (content at line 5)`}},
		{"text that is no string", "packages:\n- name: p\n  files:\n  - name: a.go\n    text: [package p]\n",
			[]string{`weft.yaml:5: package "p": files[0].content: text: want the file's source as a string, not a list`}},
		{"an object given twice", "channels:\n- name: a\n  path: /a\n- name: b\n- name: a\n  path: /b\n",
			[]string{`weft.yaml:5: channel "a" is given twice: here and at weft.yaml:2`}},
		{"one name in two kinds is no duplicate, a bad one is", "channels:\n- name: a\njobs:\n- name: a\n  typo: x\n",
			[]string{`weft.yaml:5: job "a": unknown field "typo"`}},
		{"a version other than 1", "version: 2\n",
			[]string{`weft.yaml:1: version 2: this reader knows version 1 only`}},
		{"a version that is no number", "version: one\n",
			[]string{`weft.yaml:1: version: invalid value for int32 field version: "one"`}},
		{"YAML that does not parse", "channels:\n- name: a\n  path: /a\n   service: b\n",
			[]string{`weft.yaml:4: not YAML or JSON: mapping values are not allowed in this context`}},
		{"YAML that fails on its first line", "\tchannels: []\n",
			[]string{`weft.yaml:1: not YAML or JSON: found character that cannot start any token`}},
		{"two documents", "version: 1\n---\nversion: 1\n",
			[]string{`weft.yaml:2: a config file holds one YAML document; a second starts here`}},
		{"an alias inside what it names", "channels:\n- &a {name: a, soap_actions: {x: *a}}\n",
			[]string{`weft.yaml:2: channel "a": nested more than 1000 deep`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inDir(t, map[string]string{"weft.yaml": tt.file})
			doc, err := Read("weft.yaml")
			if doc != nil {
				t.Errorf("Read returned a Doc with an error")
			}
			checkErrLines(t, err, tt.want)
		})
	}
}

// bomb is a config file whose aliases name aliases, nine deep, ten each:
// a billion nodes, expanded.
func bomb() string {
	var b strings.Builder
	b.WriteString("channels:\n- name: boom\n  soap_actions:\n    a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		alias := fmt.Sprintf("*a%d", i-1)
		fmt.Fprintf(&b, "    a%d: &a%d [%s%s]\n", i, i, strings.Repeat(alias+", ", 9), alias)
	}
	return b.String()
}

func TestReadAliasesOfAliases(t *testing.T) {
	inDir(t, map[string]string{"weft.yaml": bomb()})
	start := time.Now()
	_, err := Read("weft.yaml")
	checkErrLines(t, err, []string{`weft.yaml:4: channel "boom": too many YAML nodes to read`})
	t.Logf("refused in %v", time.Since(start))
}

func TestReadJSONErrors(t *testing.T) {
	inDir(t, map[string]string{"weft.json": "{\n\t\"version\": 1,\n\t\"channels\": [\n\t\t{\"name\": \"a\",\n\t\t \"pathh\": \"/a\"}\n\t]\n}\n"})
	_, err := Read("weft.json")
	checkErrLines(t, err, []string{`weft.json:5: channel "a": unknown field "pathh"`})
}

// wantRead is the config readFile holds.
func wantRead() *adminv1.Config {
	return &adminv1.Config{
		Version: 1,
		Security: []*adminv1.SecurityDefinition{
			{Name: "crm-token", Kind: "bearer", Token: "${WEFT_SECRET_CRM_TOKEN_TOKEN}"},
			{Name: "jwt", Kind: "jwt", Algorithms: []string{"RS256"}, PublicKeyPem: "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n", LeewayMs: 31},
		},
		Outgoing: []*adminv1.OutgoingConnection{{
			Name: "crm", Address: "https://crm.example", Security: "crm-token", TimeoutMs: 5000, PoolSize: 4,
			Headers: map[string]string{"X-Tenant": "acme", "X-Zone": "eu"}, Active: proto.Bool(false),
		}},
		Channels: []*adminv1.Channel{{
			Name: "orders", Path: "/orders", Methods: []string{"POST", "PUT"}, Service: "orders.place",
			RateLimit: 2.5, MaxBodyBytes: 1 << 20, SoapActions: map[string]string{"Place": "orders.place"},
		}},
		Jobs: []*adminv1.Job{{
			Name: "sweep", Service: "orders.sweep", Type: "interval", Interval: &adminv1.JobInterval{Hours: 1, Minutes: 30},
			StartAt: timestamppb.New(time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)), AgentLabels: map[string]string{"tier": "gold", "zone": "eu"},
		}},
		Packages: []*adminv1.PackageSource{{Name: "orders", Files: []*adminv1.SourceFile{
			{Name: "orders.go", Content: []byte("package orders\n\nfunc Place() {}\n")},
			{Name: "data.bin", Content: []byte{0xff, 0x00, 0x01}},
		}}},
	}
}

// readFile is a file with one object of every kind, written every way the
// format allows: JSON names, an unquoted timestamp, numbers as numbers and
// as strings, a hex number, an anchor and its alias, text and content.
const readFile = `version: 1
security:
- name: crm-token
  kind: bearer
  token: ${WEFT_SECRET_CRM_TOKEN_TOKEN}
- name: jwt
  kind: jwt
  algorithms: [RS256]
  publicKeyPem: |
    -----BEGIN PUBLIC KEY-----
    MFkw
    -----END PUBLIC KEY-----
  leeway_ms: 0x1f
outgoing:
- name: crm
  address: https://crm.example
  security: crm-token
  timeoutMs: "5000"
  pool_size: 4
  headers: &headers
    X-Tenant: acme
    X-Zone: eu
  active: false
channels:
- name: orders
  path: /orders
  methods: [POST, PUT]
  service: orders.place
  rate_limit: 2.5
  max_body_bytes: 1048576
  soap_actions: {Place: orders.place}
jobs:
- name: sweep
  service: orders.sweep
  type: interval
  interval: {hours: 1, minutes: "30"}
  start_at: 2026-03-04T05:06:07Z
  agent_labels:
    tier: gold
    zone: eu
packages:
- name: orders
  files:
  - name: orders.go
    text: |
      package orders

      func Place() {}
  - name: data.bin
    content: /wAB
`

func TestReadValid(t *testing.T) {
	tests := []struct {
		name, file, content string
	}{
		{"YAML", "weft.yaml", readFile},
		{"JSON", "weft.json", mustMarshal(t, wantRead(), JSON)},
		{"JSON indented by tabs", "weft.json", strings.ReplaceAll(mustMarshal(t, wantRead(), JSON), "  ", "\t")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inDir(t, map[string]string{tt.file: tt.content})
			doc, err := Read(tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if want := wantRead(); !proto.Equal(doc.Config, want) {
				t.Errorf("read\n%v\nwant\n%v", doc.Config, want)
			}
		})
	}
}

func TestReadEmpty(t *testing.T) {
	for _, content := range []string{"", "# nothing yet\n", "---\n", "{}\n"} {
		inDir(t, map[string]string{"weft.yaml": content})
		doc, err := Read("weft.yaml")
		if err != nil || !proto.Equal(doc.Config, &adminv1.Config{}) {
			t.Errorf("Read(%q) = %v, %v; want an empty config", content, doc, err)
		}
	}
}

func TestReadMissingFile(t *testing.T) {
	inDir(t, nil)
	_, err := Read("nope.yaml")
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "nope.yaml") {
		t.Errorf("err = %v, want one that the file does not exist, naming it", err)
	}
}

func TestReadIncludes(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		names []string // the channels read, in order
		want  []string // the lines of the error
	}{
		{"nested and relative", map[string]string{
			"weft.yaml":          "version: 1\nchannels:\n- name: a\ninclude:\n- conf/more.yaml\nsecurity:\n- name: s\n",
			"conf/more.yaml":     "include: [deeper/b.yaml]\nchannels:\n- name: c\n",
			"conf/deeper/b.yaml": "version: 1\nchannels:\n- name: b\n",
		}, []string{"a", "b", "c"}, nil},
		{"includes first", map[string]string{
			"weft.yaml": "include: [b.yaml]\nchannels:\n- name: a\n",
			"b.yaml":    "channels:\n- name: b\n",
		}, []string{"b", "a"}, nil},
		{"a file included twice is read once", map[string]string{
			"weft.yaml":   "include: [a.yaml, b.yaml]\n",
			"a.yaml":      "include: [common.yaml]\nchannels:\n- name: a\n",
			"b.yaml":      "include: [./common.yaml]\nchannels:\n- name: b\n",
			"common.yaml": "channels:\n- name: common\n",
		}, []string{"common", "a", "b"}, nil},
		{"a single path", map[string]string{
			"weft.yaml": "include: b.yaml\n",
			"b.yaml":    "channels:\n- name: b\n",
		}, []string{"b"}, nil},
		{"a cycle", map[string]string{
			"weft.yaml": "include: [a.yaml]\n",
			"a.yaml":    "include: [b.yaml]\n",
			"b.yaml":    "channels: []\ninclude:\n- a.yaml\n",
		}, nil, []string{"b.yaml:3: include cycle: a.yaml → b.yaml → a.yaml"}},
		{"a file including itself", map[string]string{
			"weft.yaml": "include: [./weft.yaml]\n",
		}, nil, []string{"weft.yaml:1: include cycle: weft.yaml → weft.yaml"}},
		{"a missing file", map[string]string{
			"weft.yaml":   "version: 1\ninclude:\n- conf/a.yaml\n",
			"conf/a.yaml": "include:\n- nope.yaml\n",
		}, nil, []string{"conf/a.yaml:2: include conf/nope.yaml: no such file or directory"}},
		{"an include that is no path", map[string]string{
			"weft.yaml": "include:\n- {a: b}\n",
		}, nil, []string{"weft.yaml:2: include: want a file's path"}},
		{"an include that is no list", map[string]string{
			"weft.yaml": "include: {a: b}\n",
		}, nil, []string{"weft.yaml:1: include: want a list of files"}},
		{"an object in two files", map[string]string{
			"weft.yaml": "channels:\n- name: x\n- name: orders\ninclude: [b.yaml]\n",
			"b.yaml":    "version: 1\nchannels:\n- name: orders\n",
		}, nil, []string{`b.yaml:3: channel "orders" is given twice: here and at weft.yaml:3`}},
		{"versions that differ", map[string]string{
			"weft.yaml": "version: 1\ninclude: [b.yaml]\n",
			"b.yaml":    "version: 2\n",
		}, nil, []string{"b.yaml:1: version 2 differs from version 1 at weft.yaml:1"}},
		{"problems in several files, by file read", map[string]string{
			"weft.yaml": "include: [b.yaml]\nchannels:\n- name: a\n  pathh: /a\n",
			"b.yaml":    "channels:\n- name: b\n  sevice: s\n",
		}, nil, []string{`weft.yaml:4: channel "a": unknown field "pathh"`, `b.yaml:3: channel "b": unknown field "sevice"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inDir(t, tt.files)
			doc, err := Read("weft.yaml")
			if tt.want != nil {
				checkErrLines(t, err, tt.want)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, c := range doc.Config.GetChannels() {
				names = append(names, c.GetName())
			}
			if strings.Join(names, ",") != strings.Join(tt.names, ",") {
				t.Errorf("channels %v, want %v", names, tt.names)
			}
		})
	}
}

func TestReadMissingIncludeIsNotExist(t *testing.T) {
	inDir(t, map[string]string{"weft.yaml": "include: [nope.yaml]\n"})
	_, err := Read("weft.yaml")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("err = %v, want fs.ErrNotExist", err)
	}
}

// mustMarshal is Marshal's output, or the test's end.
func mustMarshal(t *testing.T, cfg *adminv1.Config, format string) string {
	t.Helper()
	b, err := Marshal(cfg, format)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestReadMergeKeys(t *testing.T) {
	inDir(t, map[string]string{"weft.yaml": `outgoing:
- &base
  name: base
  address: https://base.example
  timeout_ms: 1000
  headers: &common {X-Tenant: acme, X-Zone: eu}
- <<: *base
  name: crm
  headers:
    <<: *common
    X-Zone: us
- <<: [{pool_size: 2, timeout_ms: 5}, *base]
  name: erp
`})
	doc, err := Read("weft.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := []*adminv1.OutgoingConnection{
		{Name: "base", Address: "https://base.example", TimeoutMs: 1000, Headers: map[string]string{"X-Tenant": "acme", "X-Zone": "eu"}},
		{Name: "crm", Address: "https://base.example", TimeoutMs: 1000, Headers: map[string]string{"X-Tenant": "acme", "X-Zone": "us"}},
		{Name: "erp", Address: "https://base.example", TimeoutMs: 5, PoolSize: 2, Headers: map[string]string{"X-Tenant": "acme", "X-Zone": "eu"}},
	}
	got := doc.Config.GetOutgoing()
	for i := range want {
		if i >= len(got) || !proto.Equal(got[i], want[i]) {
			t.Errorf("outgoing %v\nwant %v", got, want)
			break
		}
	}
	if at := doc.Locate(`outgoing[1].headers["X-Zone"]`); at != "weft.yaml:11" {
		t.Errorf("the key given over a merged one is at %q, want weft.yaml:11", at)
	}
}

func TestReadMergeKeyErrors(t *testing.T) {
	tests := []struct {
		name, file string
		want       []string
	}{
		{"a merge of no mapping", "channels:\n- <<: [a]\n  name: c\n",
			[]string{`weft.yaml:2: channel "c": <<: want a mapping or a list of mappings to merge, not "a"`}},
		{"a merge of itself", "channels:\n- &c\n  name: c\n  <<: *c\n",
			[]string{`weft.yaml:2: channel (no name): nested more than 1000 deep (an alias inside what it names?)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inDir(t, map[string]string{"weft.yaml": tt.file})
			_, err := Read("weft.yaml")
			checkErrLines(t, err, tt.want)
		})
	}
}

func TestReadFiles(t *testing.T) {
	inDir(t, map[string]string{
		"a.yaml":      "version: 1\nchannels:\n- name: a\ninclude: [common.yaml]\n",
		"b.yaml":      "include: [common.yaml]\nchannels:\n- name: b\n",
		"common.yaml": "channels:\n- name: common\n",
		"dup.yaml":    "channels:\n- name: b\n",
	})
	doc, err := ReadFiles("a.yaml", "b.yaml", "a.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range doc.Config.GetChannels() {
		names = append(names, c.GetName())
	}
	if got := strings.Join(names, ","); got != "a,common,b" {
		t.Errorf("channels %s, want a,common,b", got)
	}
	if at := doc.Locate("channels[2]"); at != "b.yaml:3" {
		t.Errorf("channels[2] at %q, want b.yaml:3", at)
	}

	_, err = ReadFiles("b.yaml", "dup.yaml")
	checkErrLines(t, err, []string{`dup.yaml:2: channel "b" is given twice: here and at b.yaml:3`})
	if _, err := ReadFiles("a.yaml", "nope.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: err = %v, want fs.ErrNotExist", err)
	}
	if doc, err := ReadFiles(); err != nil || !proto.Equal(doc.Config, &adminv1.Config{}) {
		t.Errorf("no files: %v, %v; want an empty config", doc, err)
	}
}
