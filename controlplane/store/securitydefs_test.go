package store_test

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/weft-dev/weft/agent/shared/secrets"
	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// sameDefinition compares every field, times included.
func sameDefinition(a, b *adminv1.SecurityDefinition) bool {
	return proto.Equal(a, b)
}

func basicAuth(name, password string) *adminv1.SecurityDefinition {
	return &adminv1.SecurityDefinition{Name: name, Kind: "basic_auth", Username: "shop", Password: password}
}

func bearer(name string) *adminv1.SecurityDefinition {
	return &adminv1.SecurityDefinition{Name: name, Kind: "bearer", Token: "tok-" + name}
}

// jwtVerifier verifies RS256 tokens with a JWKS: inbound only.
func jwtVerifier(name string) *adminv1.SecurityDefinition {
	return &adminv1.SecurityDefinition{Name: name, Kind: "jwt", Algorithms: []string{"RS256"},
		JwksUrl: "https://idp.example/jwks", Issuer: "idp", Audience: "weft", LeewayMs: 5000}
}

// jwtSigner verifies and signs HS256 tokens: inbound and outbound.
func jwtSigner(name string) *adminv1.SecurityDefinition {
	return &adminv1.SecurityDefinition{Name: name, Kind: "jwt", Algorithms: []string{"HS256"},
		Secret: "hs-secret-" + name, Issuer: "weft", Audience: "partner"}
}

// everySecret sets every field, the six secret ones included.
func everySecret(name string) *adminv1.SecurityDefinition {
	return &adminv1.SecurityDefinition{
		Name: name, Kind: "oauth2_client_credentials",
		Username: "u", Password: "pw-clear",
		Header: "X-Api-Key", Key: "key-clear",
		Algorithms: []string{"HS256", "RS256"}, Secret: "secret-clear",
		PublicKeyPem: "-----BEGIN PUBLIC KEY-----\n...\n", JwksUrl: "https://idp.example/jwks",
		Issuer: "iss", Audience: "aud", LeewayMs: 1500,
		Token:    "token-clear",
		TokenUrl: "https://idp.example/token", ClientId: "weft", ClientSecret: "client-secret-clear",
		Scopes:  []string{"orders:read", "orders:write"},
		CertPem: "-----BEGIN CERTIFICATE-----\n...\n", KeyPem: "-----BEGIN PRIVATE KEY-----\nkey-pem-clear\n",
		CaPem: "-----BEGIN CERTIFICATE-----\nca\n", AllowedSubjects: []string{"acme", "*.acme.example"},
		AllowedSans: []string{"billing@acme.example"}, IntrospectionUrl: "https://idp.example/introspect", CacheSeconds: 90,
	}
}

// clearSecrets are the secret fields of d by name, as SealedSecrets keys them.
func clearSecrets(d *adminv1.SecurityDefinition) map[string]string {
	return map[string]string{
		"password": d.Password, "key": d.Key, "secret": d.Secret,
		"token": d.Token, "client_secret": d.ClientSecret, "key_pem": d.KeyPem,
	}
}

// wantSealed checks that every secret of d is stored sealed, and every
// unset one is stored empty.
func wantSealed(t *testing.T, s store.Store, d *adminv1.SecurityDefinition) {
	t.Helper()
	raw, err := store.SealedSecrets(context.Background(), s, d.Name)
	if err != nil {
		t.Fatal(err)
	}
	for field, clear := range clearSecrets(d) {
		stored, ok := raw[field]
		switch {
		case !ok:
			t.Errorf("%s: field %s is not stored", d.Name, field)
		case clear == "" && stored != "":
			t.Errorf("%s: unset %s stored as %q, want empty", d.Name, field, stored)
		case clear != "" && (!secrets.IsSealed(stored) || strings.Contains(stored, clear)):
			t.Errorf("%s: %s stored as %q, want it sealed", d.Name, field, stored)
		}
	}
}

func TestSecurityDefinitions(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()

		full := everySecret("full")
		created, err := s.CreateSecurityDefinition(ctx, full)
		if err != nil {
			t.Fatal(err)
		}
		wantRevision(t, s, 1)
		want := proto.CloneOf(full)
		want.CreatedAt, want.UpdatedAt, want.Revision = created.CreatedAt, created.CreatedAt, 1
		if !sameDefinition(created, want) {
			t.Fatalf("created = %+v\nwant      %+v", created, want)
		}
		wantTime(t, "CreatedAt", created.CreatedAt.AsTime())
		got, err := s.GetSecurityDefinition(ctx, "full")
		if err != nil {
			t.Fatal(err)
		}
		if !sameDefinition(got, created) {
			t.Fatalf("GetSecurityDefinition = %+v\nwant %+v", got, created)
		}
		wantSealed(t, s, full)

		partner, err := s.CreateSecurityDefinition(ctx, basicAuth("partner", "hunter2"))
		if err != nil {
			t.Fatal(err)
		}
		wantRevision(t, s, 2)
		wantSealed(t, s, basicAuth("partner", "hunter2"))
		if len(partner.Algorithms)+len(partner.Scopes) != 0 {
			t.Fatalf("unset lists = %#v, %#v; want empty", partner.Algorithms, partner.Scopes)
		}
		before := desired(t, s)

		refused := []struct {
			name     string
			do       func() error
			sentinel error
			text     string
		}{
			{"create taken name", func() error {
				_, err := s.CreateSecurityDefinition(ctx, bearer("partner"))
				return err
			}, store.ErrConflict, `security definition "partner" already exists`},
			{"get missing", func() error {
				_, err := s.GetSecurityDefinition(ctx, "ghost")
				return err
			}, store.ErrNotFound, `security definition "ghost" does not exist`},
			{"update missing", func() error {
				_, err := s.UpdateSecurityDefinition(ctx, bearer("ghost"))
				return err
			}, store.ErrNotFound, `security definition "ghost" does not exist`},
			{"delete missing", func() error {
				_, err := s.DeleteSecurityDefinition(ctx, "ghost")
				return err
			}, store.ErrNotFound, `security definition "ghost" does not exist`},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				wantErr(t, tt.do(), tt.sentinel, tt.text)
				wantUnchanged(t, s, before)
			})
		}

		// An update that changes nothing is not a revision; nil and empty
		// lists are the same.
		same, err := s.UpdateSecurityDefinition(ctx, basicAuth("partner", "hunter2"))
		if err != nil {
			t.Fatal(err)
		}
		if !sameDefinition(same, partner) {
			t.Fatalf("no-op update = %+v, want %+v", same, partner)
		}
		wantRevision(t, s, 2)

		oldRaw, err := store.SealedSecrets(ctx, s, "partner")
		if err != nil {
			t.Fatal(err)
		}
		updated, err := s.UpdateSecurityDefinition(ctx, basicAuth("partner", "correct horse"))
		if err != nil {
			t.Fatal(err)
		}
		if updated.Revision != 3 || updated.Password != "correct horse" || !proto.Equal(updated.CreatedAt, partner.CreatedAt) ||
			updated.UpdatedAt.AsTime().Before(partner.UpdatedAt.AsTime()) {
			t.Fatalf("updated = %+v", updated)
		}
		wantRevision(t, s, 3)
		if got, err := s.GetSecurityDefinition(ctx, "partner"); err != nil || !sameDefinition(got, updated) {
			t.Fatalf("GetSecurityDefinition after update = %+v, %v; want %+v", got, err, updated)
		}
		wantSealed(t, s, basicAuth("partner", "correct horse"))
		newRaw, err := store.SealedSecrets(ctx, s, "partner")
		if err != nil {
			t.Fatal(err)
		}
		if newRaw["password"] == oldRaw["password"] {
			t.Fatal("a new password is stored as the old one was")
		}

		// Changing the kind drops the fields of the old one.
		asBearer, err := s.UpdateSecurityDefinition(ctx, bearer("full"))
		if err != nil {
			t.Fatal(err)
		}
		want = bearer("full")
		want.Algorithms, want.Scopes = []string{}, []string{}
		want.AllowedSubjects, want.AllowedSans = []string{}, []string{}
		want.CreatedAt, want.UpdatedAt, want.Revision = created.CreatedAt, asBearer.UpdatedAt, 4
		if !sameDefinition(asBearer, want) {
			t.Fatalf("kind change = %+v\nwant        %+v", asBearer, want)
		}
		wantSealed(t, s, bearer("full"))

		list, err := s.ListSecurityDefinitions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(list) != 2 || !sameDefinition(list[0], asBearer) || !sameDefinition(list[1], updated) {
			t.Fatalf("ListSecurityDefinitions = %+v", list)
		}

		rev, err := s.DeleteSecurityDefinition(ctx, "full")
		if err != nil || rev != 5 {
			t.Fatalf("DeleteSecurityDefinition = %d, %v; want 5", rev, err)
		}
		if _, err := s.GetSecurityDefinition(ctx, "full"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("deleted definition: err = %v, want not found", err)
		}
		changes, err := store.ChangeRevisions(ctx, s)
		if err != nil || len(changes) != 5 {
			t.Fatalf("change log = %v, %v; want 5 entries", changes, err)
		}
	})
}

// TestSecurityRefs checks the references of channels and outgoing
// connections to definitions, in both directions.
func TestSecurityRefs(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		deploy(t, s, pkg("alpha", []string{"alpha.one"}, "a.go", "a"))
		for _, d := range []*adminv1.SecurityDefinition{
			basicAuth("basic", "pw"), bearer("bearer"), jwtVerifier("jwt-in"), jwtSigner("jwt-hs"),
		} {
			if _, err := s.CreateSecurityDefinition(ctx, d); err != nil {
				t.Fatal(err)
			}
		}
		secured := func(name, path, security string) *adminv1.Channel {
			ch := channel(name, path, "alpha.one")
			ch.Security = security
			return ch
		}
		for _, ch := range []*adminv1.Channel{
			secured("orders", "/orders", "basic"),
			secured("stock", "/stock", "basic"),
			secured("signed", "/signed", "jwt-hs"),
			secured("tokens", "/tokens", "jwt-in"),
		} {
			if _, err := s.CreateChannel(ctx, ch); err != nil {
				t.Fatal(err)
			}
		}
		for _, c := range []*adminv1.OutgoingConnection{
			connection("erp", "basic"), connection("partner", "jwt-hs"), connection("idp", "bearer"),
		} {
			if _, err := s.CreateOutgoingConnection(ctx, c); err != nil {
				t.Fatal(err)
			}
		}
		before := desired(t, s)

		refused := []struct {
			name     string
			do       func() error
			sentinel error
			text     string
		}{
			{"channel with outbound-only definition", func() error {
				_, err := s.CreateChannel(ctx, secured("new", "/new", "bearer"))
				return err
			}, store.ErrWrongKind, `channel "new": security definition "bearer" is bearer, which cannot verify inbound requests`},
			{"channel update to outbound-only definition", func() error {
				_, err := s.UpdateChannel(ctx, secured("orders", "/orders", "bearer"))
				return err
			}, store.ErrWrongKind, `channel "orders": security definition "bearer" is bearer, which cannot verify inbound requests`},
			{"channel with unknown definition", func() error {
				_, err := s.CreateChannel(ctx, secured("new", "/new", "ghost"))
				return err
			}, store.ErrNotFound, `channel "new": security definition "ghost" does not exist`},
			{"connection with inbound-only definition", func() error {
				_, err := s.CreateOutgoingConnection(ctx, connection("new", "jwt-in"))
				return err
			}, store.ErrWrongKind, `outgoing connection "new": security definition "jwt-in" is a jwt definition without an HS256 secret, which cannot supply outbound credentials`},
			{"connection update to inbound-only definition", func() error {
				_, err := s.UpdateOutgoingConnection(ctx, connection("erp", "jwt-in"))
				return err
			}, store.ErrWrongKind, `outgoing connection "erp": security definition "jwt-in" is a jwt definition without an HS256 secret`},
			{"connection with unknown definition", func() error {
				_, err := s.CreateOutgoingConnection(ctx, connection("new", "ghost"))
				return err
			}, store.ErrNotFound, `outgoing connection "new": security definition "ghost" does not exist`},
			{"kind change its channels cannot use", func() error {
				_, err := s.UpdateSecurityDefinition(ctx, bearer("basic"))
				return err
			}, store.ErrConflict, `security definition "basic": bearer cannot verify inbound requests, and channels "orders", "stock" use it`},
			{"kind change its connections cannot use", func() error {
				_, err := s.UpdateSecurityDefinition(ctx, jwtVerifier("jwt-hs"))
				return err
			}, store.ErrConflict, `security definition "jwt-hs": a jwt definition without an HS256 secret cannot supply outbound credentials, and outgoing connection "partner" uses it`},
			{"kind change neither can use", func() error {
				_, err := s.UpdateSecurityDefinition(ctx, &adminv1.SecurityDefinition{Name: "basic", Kind: "nonsense"})
				return err
			}, store.ErrConflict, `security definition "basic": nonsense cannot verify inbound requests, and channels "orders", "stock" use it; nonsense cannot supply outbound credentials, and outgoing connection "erp" uses it`},
			{"delete in use", func() error {
				_, err := s.DeleteSecurityDefinition(ctx, "basic")
				return err
			}, store.ErrConflict, `security definition "basic" is used by channels "orders", "stock" and outgoing connection "erp"; point them at another definition first`},
			{"delete used by a connection", func() error {
				_, err := s.DeleteSecurityDefinition(ctx, "bearer")
				return err
			}, store.ErrConflict, `security definition "bearer" is used by outgoing connection "idp";`},
			{"delete used by a channel", func() error {
				_, err := s.DeleteSecurityDefinition(ctx, "jwt-in")
				return err
			}, store.ErrConflict, `security definition "jwt-in" is used by channel "tokens";`},
		}
		for _, tt := range refused {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.do()
				wantErr(t, err, tt.sentinel, tt.text)
				// The sentinels are distinct: a wrong kind is no duplicate.
				for _, other := range []error{store.ErrNotFound, store.ErrConflict, store.ErrWrongKind} {
					if other != tt.sentinel && errors.Is(err, other) {
						t.Errorf("err = %v, is also %v; want %v only", err, other, tt.sentinel)
					}
				}
				wantUnchanged(t, s, before)
			})
		}

		// A change its users can still use goes through: basic_auth to api_key.
		apiKey := &adminv1.SecurityDefinition{Name: "basic", Kind: "api_key", Header: "X-Key", Key: "k"}
		if _, err := s.UpdateSecurityDefinition(ctx, apiKey); err != nil {
			t.Fatalf("update to a kind both directions use: %v", err)
		}
		// Once nothing uses it, a definition can be deleted.
		if _, err := s.DeleteChannel(ctx, "tokens"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteSecurityDefinition(ctx, "jwt-in"); err != nil {
			t.Fatalf("delete unused definition: %v", err)
		}
	})
}

// TestSecretsKey checks a store without a secrets key, and one with the
// wrong key.
func TestSecretsKey(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			s := storetest.Open(t, b)
			if _, err := s.CreateSecurityDefinition(ctx, basicAuth("partner", "hunter2")); err != nil {
				t.Fatal(err)
			}

			otherKey, err := secrets.NewBox(bytes.Repeat([]byte{9}, secrets.KeySize))
			if err != nil {
				t.Fatal(err)
			}
			// Another key is refused at open: the database keeps a check
			// sealed with the first key it saw.
			if wrong, err := store.Open(ctx, b.DSN, nil, store.WithSecrets(otherKey)); err == nil || !errors.Is(err, store.ErrWrongSecretsKey) {
				if err == nil {
					wrong.Close()
				}
				t.Fatalf("open with another secrets key: err = %v, want %v", err, store.ErrWrongSecretsKey)
			}
			// Past the check (a restored backup, say), each read still names
			// what it cannot open.
			clearKeyCheck(t, s)
			wrong := openStore(t, b, store.WithSecrets(otherKey))
			noKey := openStore(t, b)
			reads := []struct {
				name string
				s    store.Store
				is   error
				text string
			}{
				{"wrong key", wrong, secrets.ErrWrongKey, `security definition "partner": password: open secret: wrong key`},
				{"no key", noKey, nil, `security definition "partner": password is sealed and no secrets key configured`},
			}
			for _, tt := range reads {
				t.Run(tt.name, func(t *testing.T) {
					ops := map[string]func() error{
						"get": func() error {
							_, err := tt.s.GetSecurityDefinition(ctx, "partner")
							return err
						},
						"list": func() error {
							_, err := tt.s.ListSecurityDefinitions(ctx)
							return err
						},
						"desired": func() error {
							_, err := tt.s.Desired(ctx)
							return err
						},
					}
					for op, do := range ops {
						err := do()
						if err == nil || !strings.Contains(err.Error(), tt.text) || (tt.is != nil && !errors.Is(err, tt.is)) {
							t.Errorf("%s: err = %v, want %v containing %q", op, err, tt.is, tt.text)
						}
					}
				})
			}

			// Without a key, a definition with a secret cannot be stored;
			// one without secrets can.
			_, err = noKey.CreateSecurityDefinition(ctx, bearer("api"))
			wantErr(t, err, nil, `security definition "api": token: no secrets key configured`)
			wantRevision(t, s, 1)
			if _, err := noKey.CreateSecurityDefinition(ctx, jwtVerifier("idp")); err != nil {
				t.Fatalf("create a definition without secrets and without a key: %v", err)
			}
			if _, err := noKey.GetSecurityDefinition(ctx, "idp"); err != nil {
				t.Fatalf("read a definition without secrets and without a key: %v", err)
			}
		})
	}
}

// openStore opens another store on b with opts, closed by t.Cleanup.
func openStore(t *testing.T, b storetest.Backend, opts ...store.Option) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), b.DSN, nil, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func clearKeyCheck(t *testing.T, s store.Store) {
	t.Helper()
	if err := store.ClearKeyCheck(context.Background(), s); err != nil {
		t.Fatal(err)
	}
}

// TestSpecHoldsNoSecret: the spec column of a security definition, read
// as the database holds it, has none of its secrets in clear, from a
// create, an update or an import alike.
func TestSpecHoldsNoSecret(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		wantNone := func(d *adminv1.SecurityDefinition) {
			t.Helper()
			spec, err := store.RawSpec(ctx, s, d.Name)
			if err != nil || len(spec) == 0 {
				t.Fatalf("spec of %s = %q, %v", d.Name, spec, err)
			}
			for field, clear := range clearSecrets(d) {
				if clear != "" && bytes.Contains(spec, []byte(clear)) {
					t.Errorf("the spec of %s holds its %s in clear", d.Name, field)
				}
			}
			wantSealed(t, s, d)
		}
		full := everySecret("full")
		if _, err := s.CreateSecurityDefinition(ctx, full); err != nil {
			t.Fatal(err)
		}
		wantNone(full)
		full.Password, full.KeyPem = "pw-changed", "-----BEGIN PRIVATE KEY-----\nkey-pem-changed\n"
		if _, err := s.UpdateSecurityDefinition(ctx, full); err != nil {
			t.Fatal(err)
		}
		wantNone(full)
		imported := everySecret("imported")
		if _, err := s.ApplyConfig(ctx, "test", store.ConfigChange{BaseRevision: 2,
			Security: []*adminv1.SecurityDefinition{imported}}); err != nil {
			t.Fatal(err)
		}
		wantNone(imported)
	})
}
