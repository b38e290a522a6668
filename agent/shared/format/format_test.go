package format

import (
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in      string
		want    Format
		wantErr bool
	}{
		{in: "json", want: JSON},
		{in: "", want: JSON},
		{in: "xml", want: XML},
		{in: "SOAP11", want: SOAP11},
		{in: "soap12", want: SOAP12},
		{in: "soap", wantErr: true},
		{in: "yaml", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := Parse(tt.in)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "json, xml, soap11, soap12") {
					t.Fatalf("Parse(%q) error = %v, want one naming the accepted values", tt.in, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Parse(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
			if back, err := Parse(got.String()); err != nil || back != got {
				t.Fatalf("Parse(%q.String()) = %v, %v", got, back, err)
			}
		})
	}
}

func TestCheckContentType(t *testing.T) {
	tests := []struct {
		name       string
		f          Format
		ct         string
		wantAction string
		wantErr    string
	}{
		{name: "empty accepted", f: SOAP11},
		{name: "soap11 text/xml", f: SOAP11, ct: "text/xml; charset=utf-8"},
		{name: "soap11 wrong", f: SOAP11, ct: "application/soap+xml", wantErr: "takes text/xml"},
		{name: "soap12 action", f: SOAP12, ct: `application/soap+xml; charset=utf-8; action="urn:Greet"`, wantAction: "urn:Greet"},
		{name: "soap12 wrong", f: SOAP12, ct: "text/xml", wantErr: "takes application/soap+xml"},
		{name: "xml text/xml", f: XML, ct: "text/xml"},
		{name: "xml plus", f: XML, ct: "application/atom+xml"},
		{name: "xml wrong", f: XML, ct: "application/json", wantErr: "application/xml or text/xml"},
		{name: "json", f: JSON, ct: "application/json"},
		{name: "garbage", f: XML, ct: ";;;", wantErr: "takes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			action, err := CheckContentType(tt.f, tt.ct)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || action != tt.wantAction {
				t.Fatalf("= %q, %v; want %q", action, err, tt.wantAction)
			}
		})
	}
}

func TestNameEscapeRoundTrip(t *testing.T) {
	for _, k := range []string{"name", "first name", "1st", "a:b", "_x0020_", "über", "-x", "a.b-c", "#hash", "😀", "_x"} {
		t.Run(k, func(t *testing.T) {
			e, err := escapeName(k)
			if err != nil {
				t.Fatal(err)
			}
			if back := unescapeName(e); back != k {
				t.Fatalf("unescape(escape(%q)) = %q (escaped %q)", k, back, e)
			}
		})
	}
	// An element never decodes to an attribute or text key.
	for _, e := range []string{"_x0040_id", "_x0023_text"} {
		if got := unescapeName(e); got != e {
			t.Fatalf("unescapeName(%q) = %q, want it unchanged", e, got)
		}
	}
	if _, err := escapeName(""); err == nil {
		t.Fatal("escapeName(\"\") succeeded")
	}
}
