package configfile

import "testing"

func TestLocate(t *testing.T) {
	inDir(t, map[string]string{
		"weft.yaml": readFile + "include: [conf/more.yaml]\n",
		"conf/more.yaml": "# more\nchannels:\n- name: more\n  path: /more\n\n  service: more.run\n" +
			"security:\n- {name: basic, kind: basic_auth, password: \"${PW}\"}\n",
	})
	doc, err := Read("weft.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		field, want string
	}{
		{"version", "weft.yaml:1"},
		{"security[0]", "weft.yaml:3"},
		{"security[0].token", "weft.yaml:5"},
		{"security[1].public_key_pem", "weft.yaml:9"}, // given by its JSON name
		{"security[1].algorithms[0]", "weft.yaml:8"},
		{"security[2].password", "conf/more.yaml:8"},
		{"outgoing[0].headers[\"X-Zone\"]", "weft.yaml:22"},
		{"outgoing[0].timeout_ms", "weft.yaml:18"},
		{"channels[0].methods[1]", "weft.yaml:27"},
		{"channels[0].soap_actions[\"Place\"]", "weft.yaml:31"},
		{"channels[1]", "conf/more.yaml:3"},
		{"channels[1].service", "conf/more.yaml:6"},
		{"config.channels[1].path", "conf/more.yaml:4"},
		{"channels[1].timeout_ms", "conf/more.yaml:3"}, // not in the file: the object
		{"jobs[0].agent_labels[\"tier\"]", "weft.yaml:39"},
		{"jobs[0].agent_labels[tier]", "weft.yaml:39"},
		{"jobs[0].agent_labels[\"gone\"]", "weft.yaml:38"}, // not in the file: the map
		{"jobs[0].interval.minutes", "weft.yaml:36"},
		{"jobs[0].start_at", "weft.yaml:37"},
		{"packages[0].files[0]", "weft.yaml:44"},
		{"packages[0].files[0].content", "weft.yaml:45"}, // given as text
		{"packages[0].files[1].content", "weft.yaml:50"},
		{"packages[0].files[7].name", "weft.yaml:43"}, // no such file: the list
		{"packages[0]", "weft.yaml:42"},
		{"packages[0].files[", "weft.yaml:43"}, // the part it can read
		{"channels[2]", ""},
		{"channels[-1]", ""},
		{"channels[x]", ""},
		{"channels", ""},
		{"widgets[0]", ""},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			if got := doc.Locate(tt.field); got != tt.want {
				t.Errorf("Locate(%q) = %q, want %q", tt.field, got, tt.want)
			}
		})
	}
}

func TestLocateWithoutVersion(t *testing.T) {
	inDir(t, map[string]string{"weft.yaml": "channels:\n- name: a\n"})
	doc, err := Read("weft.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := doc.Locate("version"); got != "" {
		t.Errorf("Locate(version) = %q, want \"\" for a file without one", got)
	}
}

func TestSplitPath(t *testing.T) {
	tests := []struct {
		path, want string
	}{
		{"", ""},
		{".service", "service"},
		{".files[0].content", "files[0].content"},
		{`.agent_labels["a.b[c]"]`, `agent_labels["a.b[c]"]`},
		{".agent_labels[tier]", `agent_labels["tier"]`},
		{".methods[007]", "methods[7]"},
		{".files[0].", "files[0]"},
		{`.agent_labels["open`, "agent_labels"},
	}
	for _, tt := range tests {
		if got := joinPath(splitPath(tt.path)); got != tt.want {
			t.Errorf("splitPath(%q) joined = %q, want %q", tt.path, got, tt.want)
		}
	}
}
