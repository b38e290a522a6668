package configfile

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// resolveFile uses variables in a singular string, a list, a map value, a
// nested message's string, and twice in one string; its include too.
const resolveFile = `version: 1
include: [prod-more.yaml]
security:
- name: crm-token
  kind: bearer
  token: ${WEFT_SECRET_CRM_TOKEN_TOKEN}
outgoing:
- name: crm
  address: https://${HOST}:${PORT}/api
  headers:
    X-Tenant: ${TENANT}
channels:
- name: orders
  methods: [POST, "${METHOD}"]
packages:
- name: p
  files:
  - name: ${FILE}.go
    text: |
      package p // ${NOT_RESOLVED}: bytes are not strings
`

func TestResolve(t *testing.T) {
	vars := map[string]string{
		"WEFT_SECRET_CRM_TOKEN_TOKEN": "t0k", "HOST": "crm.example", "PORT": "8443", "TENANT": "acme",
		"METHOD": "PUT", "FILE": "main", "JOB": "nightly",
	}
	lookup := func(name string) (string, bool) {
		v, ok := vars[name]
		return v, ok
	}
	inDir(t, map[string]string{
		"prod.yaml":      resolveFile,
		"prod-more.yaml": "jobs:\n- name: sweep\n  service: ${JOB}.run\n",
	})
	doc, err := Read("prod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Resolve(lookup); err != nil {
		t.Fatal(err)
	}
	cfg := doc.Config
	got := []string{
		cfg.GetSecurity()[0].GetToken(), cfg.GetOutgoing()[0].GetAddress(), cfg.GetOutgoing()[0].GetHeaders()["X-Tenant"],
		cfg.GetChannels()[0].GetMethods()[1], cfg.GetPackages()[0].GetFiles()[0].GetName(), cfg.GetJobs()[0].GetService(),
		string(cfg.GetPackages()[0].GetFiles()[0].GetContent()),
	}
	want := []string{"t0k", "https://crm.example:8443/api", "acme", "PUT", "main.go", "nightly.run",
		"package p // ${NOT_RESOLVED}: bytes are not strings\n"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("resolved to\n%q\nwant\n%q", got, want)
	}
}

func TestResolveMissing(t *testing.T) {
	inDir(t, map[string]string{
		"prod.yaml":      resolveFile,
		"prod-more.yaml": "jobs:\n- name: sweep\n  service: ${JOB}.run\n",
	})
	doc, err := Read("prod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	before := proto.Clone(doc.Config)
	err = doc.Resolve(func(name string) (string, bool) { return "x", name == "PORT" })
	const unset = " is not set (in the environment or --env-file)"
	checkErrLines(t, err, []string{
		`prod.yaml:6: security "crm-token": token: variable WEFT_SECRET_CRM_TOKEN_TOKEN` + unset,
		`prod.yaml:9: outgoing "crm": address: variable HOST` + unset,
		`prod.yaml:11: outgoing "crm": headers["X-Tenant"]: variable TENANT` + unset,
		`prod.yaml:14: channel "orders": methods[1]: variable METHOD` + unset,
		`prod-more.yaml:3: job "sweep": service: variable JOB` + unset,
		`prod.yaml:18: package "p": files[0].name: variable FILE` + unset,
	})
	if got := doc.Config.GetOutgoing()[0].GetAddress(); got != "https://${HOST}:x/api" {
		t.Errorf("address %q: want the variables set replaced, the others left", got)
	}
	if proto.Equal(before, doc.Config) {
		t.Errorf("Resolve replaced nothing")
	}
}

func TestResolveWithoutPlaces(t *testing.T) {
	// A Doc made in code knows no lines; its errors still name the object.
	doc := &Doc{Config: &adminv1.Config{Channels: []*adminv1.Channel{{Name: "a", Service: "${SVC}"}}}}
	err := doc.Resolve(func(string) (string, bool) { return "", false })
	want := `channel "a": service: variable SVC is not set (in the environment or --env-file)`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
	if err := (&Doc{}).Resolve(nil); err != nil {
		t.Errorf("an empty Doc: %v", err)
	}
}

// $${VAR} is a literal ${VAR}: export writes one that way, and it must not
// be resolved, nor missed.
func TestResolveEscaped(t *testing.T) {
	inDir(t, map[string]string{"weft.yaml": `jobs:
- name: j
  payload: '{"greeting":"$${NAME} and ${WHO}","cost":"$$5"}'
`})
	doc, err := Read("weft.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Resolve(func(name string) (string, bool) { return map[string]string{"WHO": "Ada"}[name], name == "WHO" }); err != nil {
		t.Fatalf("Resolve: %v", err)
	}
	if got, want := doc.Config.GetJobs()[0].GetPayload(), `{"greeting":"${NAME} and Ada","cost":"$$5"}`; got != want {
		t.Errorf("payload = %s, want %s", got, want)
	}
}
