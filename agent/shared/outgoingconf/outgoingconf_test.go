package outgoingconf

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	ok := Config{Name: "crm", Address: "https://crm.example.com/api", PathTemplate: "/customers/{id}"}
	tests := []struct {
		name    string
		edit    func(*Config)
		wantErr string // empty: valid
	}{
		{"minimal", func(c *Config) {}, ""},
		{"all fields", func(c *Config) {
			c.Method, c.Format, c.SOAPAction = "POST", FormatSOAP11, "urn:get"
			c.Timeout, c.PoolSize = time.Second, 3
			c.Headers = map[string]string{"X-Tenant": "a"}
		}, ""},
		{"trailing slash", func(c *Config) { c.PathTemplate = "/customers/" }, ""},
		{"no template", func(c *Config) { c.PathTemplate = "" }, ""},
		{"empty name", func(c *Config) { c.Name = " " }, "name: must not be empty"},
		{"name with space", func(c *Config) { c.Name = "a b" }, "name: must not contain"},
		{"no address", func(c *Config) { c.Address = "" }, "address: must not be empty"},
		{"bad scheme", func(c *Config) { c.Address = "ftp://h" }, `address: scheme "ftp" is not http or https`},
		{"no host", func(c *Config) { c.Address = "http:///x" }, "address: has no host"},
		{"credentials", func(c *Config) { c.Address = "https://u:secret@h" }, "address: must not carry credentials"},
		{"query", func(c *Config) { c.Address = "https://h?a=1" }, "address: must not have a query"},
		{"unparseable", func(c *Config) { c.Address = "https://h:port" }, "address: not a URL"},
		{"relative template", func(c *Config) { c.PathTemplate = "customers" }, "path_template: \"customers\" must start with /"},
		{"partial param", func(c *Config) { c.PathTemplate = "/c/id-{id}" }, `path_template: "/c/id-{id}": segment "id-{id}": a param must be a whole segment`},
		{"unclosed param", func(c *Config) { c.PathTemplate = "/c/{id" }, "a param must be a whole segment"},
		{"bad param name", func(c *Config) { c.PathTemplate = "/c/{a-b}" }, `param "a-b" is not a name`},
		{"empty param", func(c *Config) { c.PathTemplate = "/c/{}" }, "a param must be a whole segment"},
		{"duplicate param", func(c *Config) { c.PathTemplate = "/c/{id}/{id}" }, `param "id" appears twice`},
		{"empty segment", func(c *Config) { c.PathTemplate = "/c//d" }, "empty segment"},
		{"query in template", func(c *Config) { c.PathTemplate = "/c?x=1" }, "path_template:"},
		{"bad method", func(c *Config) { c.Method = "FETCH" }, `method: "FETCH" is not one of`},
		{"lower method", func(c *Config) { c.Method = "get" }, "method:"},
		{"bad format", func(c *Config) { c.Format = "yaml" }, `data_format: "yaml" is not one of`},
		{"soap action on json", func(c *Config) { c.SOAPAction = "x" }, "soap_action: only valid"},
		{"quote in soap action", func(c *Config) { c.Format, c.SOAPAction = FormatSOAP12, `a"b` }, "soap_action: must not contain"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout: -1s is negative"},
		{"negative pool", func(c *Config) { c.PoolSize = -1 }, "pool_size: -1 is negative"},
		{"bad CA bundle", func(c *Config) { c.CABundlePEM = []byte("not pem") }, "ca_bundle_pem: no PEM certificate"},
		{"bad header name", func(c *Config) { c.Headers = map[string]string{"X Bad": "v"} }, `headers: "X Bad" is not a valid header name`},
		{"header injection", func(c *Config) { c.Headers = map[string]string{"X-A": "v\r\nX-B: w"} }, `headers: value of "X-A" contains a line break`},
		{"credentials in a header", func(c *Config) { c.Headers = map[string]string{"authorization": "Bearer t"} }, `headers: authorization carries credentials`},
		{"cookie in a header", func(c *Config) { c.Headers = map[string]string{"Cookie": "s=1"} }, `use a security definition`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate: no error, want %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: %q, want it to contain %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), `outgoing "`) {
				t.Fatalf("Validate: %q does not name the connection", err)
			}
			if strings.Contains(err.Error(), "secret") {
				t.Fatalf("Validate: %q leaks a credential", err)
			}
		})
	}
}
