package configplan

import (
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// A plan's value of each kind of field reads as short JSON.
func TestFieldJSON(t *testing.T) {
	long := strings.Repeat("x", 200)
	c := &adminv1.OutgoingConnection{Name: "n", TimeoutMs: 5000, Active: proto.Bool(false), Headers: map[string]string{"b": "2", "a": "1"}, CaBundlePem: long}
	m := c.ProtoReflect()
	tests := []struct {
		field protoreflect.Name
		want  string
	}{
		{"name", `"n"`},
		{"timeout_ms", "5000"},
		{"active", "false"},
		{"headers", `{"a":"1","b":"2"}`},
		{"pool_size", ""},
	}
	for _, tt := range tests {
		if got := fieldJSON(m, m.Descriptor().Fields().ByName(tt.field)); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.field, got, tt.want)
		}
	}
	got := shorten(fieldJSON(m, m.Descriptor().Fields().ByName("ca_bundle_pem")))
	if len([]rune(got)) != maxShown || !strings.HasSuffix(got, "…") {
		t.Errorf("a long value reads %q; want %d characters ending in …", got, maxShown)
	}
}

// Two long values that differ far in are shown around their first
// difference, so that a plan never shows a change as two equal texts.
func TestShortenPair(t *testing.T) {
	long := strings.Repeat("x", 100)
	tests := []struct{ name, a, b, wantA, wantB string }{
		{"short", "a", "b", "a", "b"},
		{"set", "", long, "", long[:maxShown-1] + "…"},
		{"early", "y" + long, "z" + long, "y" + long[:maxShown-2] + "…", "z" + long[:maxShown-2] + "…"},
		{"deep", long + "${5}" + long, long + "$${5}" + long, // they differ after the first $
			"…" + strings.Repeat("x", shownBefore-1) + "${5}" + strings.Repeat("x", maxShown-2-shownBefore-3) + "…",
			"…" + strings.Repeat("x", shownBefore-1) + "$${5}" + strings.Repeat("x", maxShown-2-shownBefore-4) + "…"},
		{"deep, one ends", long + "$", long + "$$", "…" + strings.Repeat("x", shownBefore-1) + "$", "…" + strings.Repeat("x", shownBefore-1) + "$$"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := shortenPair(tt.a, tt.b)
			if a != tt.wantA || b != tt.wantB {
				t.Errorf("shortenPair = %q, %q\nwant %q, %q", a, b, tt.wantA, tt.wantB)
			}
			if len([]rune(a)) > maxShown || len([]rune(b)) > maxShown {
				t.Errorf("longer than %d characters: %q, %q", maxShown, a, b)
			}
		})
	}
}

func TestSecretPlaceholder(t *testing.T) {
	tests := []struct{ name, field, want string }{
		{"crm-token", "token", "${WEFT_SECRET_CRM_TOKEN_TOKEN}"},
		{"Partner.API_v2", "client_secret", "${WEFT_SECRET_PARTNER_API_V2_CLIENT_SECRET}"},
		{"zürich", "key_pem", "${WEFT_SECRET_Z_RICH_KEY_PEM}"},
		{"9to5", "password", "${WEFT_SECRET_9TO5_PASSWORD}"},
	}
	for _, tt := range tests {
		vars := secretVarNames([]*adminv1.SecurityDefinition{{Name: tt.name}})
		if got := secretPlaceholder(vars[tt.name], tt.field); got != tt.want {
			t.Errorf("placeholder of %q, %q = %q, want %q", tt.name, tt.field, got, tt.want)
		}
	}
}

// Names that read the same as variables get apart placeholders, the same
// whether or not the others are exported.
func TestSecretPlaceholderCollision(t *testing.T) {
	defs := []*adminv1.SecurityDefinition{{Name: "crm-token"}, {Name: "crm.token"}, {Name: "crm_token"}, {Name: "other"}}
	vars := secretVarNames(defs)
	seen := map[string]string{}
	for _, d := range defs {
		v := vars[d.Name]
		if other, dup := seen[v]; dup {
			t.Errorf("%q and %q share the variable name %s", d.Name, other, v)
		}
		seen[v] = d.Name
		if !strings.HasPrefix(v, "CRM_TOKEN_") && d.Name != "other" {
			t.Errorf("%q is named %s; want CRM_TOKEN_ and a hash", d.Name, v)
		}
	}
	if vars["other"] != "OTHER" {
		t.Errorf("other is named %s; want OTHER, as no other name reads the same", vars["other"])
	}
	if again := secretVarNames(slices.Clone(defs)[1:]); again["crm.token"] != vars["crm.token"] {
		t.Errorf("crm.token is named %s without crm-token, %s with it; want the hash either way while a twin remains", again["crm.token"], vars["crm.token"])
	}
}
