package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weft-dev/weft/controlplane/store"
	"github.com/weft-dev/weft/controlplane/store/storetest"
)

// secretHash is what the store keeps of a secret.
func secretHash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// certFor is a certificate as the store keeps it.
func certFor(serial string) store.Certificate {
	return store.Certificate{Serial: serial, NotAfter: time.Now().Add(24 * time.Hour).UTC().Truncate(time.Millisecond)}
}

// issued returns an issue function for Enroll that counts its calls.
func issued(c store.Certificate, calls *int) func() (store.Certificate, error) {
	return func() (store.Certificate, error) {
		*calls++
		return c, nil
	}
}

// auditOf returns the audit entries of kind, oldest first, as
// "author kind name action: summary".
func auditOf(t *testing.T, s store.Store, kinds ...string) []string {
	t.Helper()
	entries, _, err := s.ListAudit(context.Background(), store.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		for _, k := range kinds {
			if e.Kind == k {
				out = append(out, fmt.Sprintf("%s %s %s %s: %s", e.Author, e.Kind, e.Name, e.Action, e.Summary))
			}
		}
	}
	return out
}

func wantLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n%s\nwant\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestCA stores the CA once, keeps its key sealed, and hands replicas
// starting together the same CA.
func TestCA(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			const replicas = 4
			stores := make([]store.Store, replicas)
			for i := range stores {
				stores[i] = storetest.Open(t, b)
			}
			if _, _, err := stores[0].CA(ctx); !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("CA before InitCA: err = %v, want ErrNotFound", err)
			}

			type result struct {
				cert, key []byte
				created   bool
				err       error
			}
			results := make([]result, replicas)
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() {
					cert, key, created, err := s.InitCA(ctx, fmt.Appendf(nil, "cert %d", i), fmt.Appendf(nil, "key %d", i))
					results[i] = result{cert, key, created, err}
				})
			}
			wg.Wait()
			winner := -1
			for i, r := range results {
				if r.err != nil {
					t.Fatalf("replica %d: InitCA: %v", i, r.err)
				}
				if r.created {
					if winner >= 0 {
						t.Fatalf("replicas %d and %d both created the CA", winner, i)
					}
					winner = i
				}
			}
			if winner < 0 {
				t.Fatal("no replica created the CA")
			}
			wantCert, wantKey := fmt.Sprintf("cert %d", winner), fmt.Sprintf("key %d", winner)
			for i, r := range results {
				if string(r.cert) != wantCert || string(r.key) != wantKey {
					t.Errorf("replica %d got CA %q, %q; want the winner's %q, %q", i, r.cert, r.key, wantCert, wantKey)
				}
			}

			later := storetest.Open(t, b)
			cert, key, created, err := later.InitCA(ctx, []byte("cert later"), []byte("key later"))
			if err != nil || created || string(cert) != wantCert || string(key) != wantKey {
				t.Fatalf("InitCA after = %q, %q, %t, %v; want the first CA, not created", cert, key, created, err)
			}
			if cert, key, err := later.CA(ctx); err != nil || string(cert) != wantCert || string(key) != wantKey {
				t.Fatalf("CA = %q, %q, %v", cert, key, err)
			}

			raw, err := store.StoredCAKey(ctx, later)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(raw, "key") || !strings.HasPrefix(raw, "v1:") {
				t.Errorf("the CA key is stored as %q, want it sealed", raw)
			}

			wantLines(t, "audit", auditOf(t, later, store.AuditKindCA), []string{" ca ca created: CA created"})
			wantRevision(t, later, 0)
		})
	}
}

// TestCAWithoutSecretsKey: a store without a secrets key cannot keep a CA.
func TestCAWithoutSecretsKey(t *testing.T) {
	s := openStore(t, storetest.SQLite(t))
	_, _, _, err := s.InitCA(context.Background(), []byte("cert"), []byte("key"))
	wantErr(t, err, nil, "no secrets key configured")
}

func TestTokens(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := store.WithAuthor(context.Background(), "ada")
		deploy(t, s, pkg("hello", []string{"hello.greet"}, "hello.go", "package hello"))
		expires := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)

		ci, err := s.CreateToken(ctx, store.NewToken{Name: "ci", Role: store.RoleDeployer, Hash: secretHash("ci"), ExpiresAt: expires, CreatedBy: "bo"})
		if err != nil {
			t.Fatal(err)
		}
		if ci.Name != "ci" || ci.Role != store.RoleDeployer || ci.Hash != secretHash("ci") || !ci.ExpiresAt.Equal(expires) ||
			!ci.RevokedAt.IsZero() || ci.CreatedBy != "bo" || ci.CreatedAt.IsZero() {
			t.Fatalf("CreateToken = %+v", ci)
		}
		if _, err := s.CreateToken(ctx, store.NewToken{Name: "alice", Role: store.RoleViewer, Hash: secretHash("alice")}); err != nil {
			t.Fatal(err)
		}

		for _, tc := range []struct {
			name     string
			tok      store.NewToken
			sentinel error
			text     string
		}{
			{"name taken", store.NewToken{Name: "ci", Role: store.RoleAdmin, Hash: secretHash("other")}, store.ErrConflict, `token "ci" already exists`},
			{"secret taken", store.NewToken{Name: "ci2", Role: store.RoleAdmin, Hash: secretHash("ci")}, store.ErrConflict, `token "ci" has the same secret`},
			{"no name", store.NewToken{Role: store.RoleAdmin, Hash: secretHash("x")}, nil, "name is empty"},
			{"bad role", store.NewToken{Name: "x", Role: "root", Hash: secretHash("x")}, nil, `role "root": want viewer, deployer or admin`},
			{"bad hash", store.NewToken{Name: "x", Role: store.RoleAdmin, Hash: "secret"}, nil, "hash: want the sha256"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := s.CreateToken(ctx, tc.tok)
				wantErr(t, err, tc.sentinel, tc.text)
			})
		}

		list, err := s.ListTokens(ctx)
		if err != nil || len(list) != 2 || list[0].Name != "alice" || list[1] != ci {
			t.Fatalf("ListTokens = %+v, %v", list, err)
		}
		if got, err := s.TokenByHash(ctx, secretHash("ci")); err != nil || got != ci {
			t.Fatalf("TokenByHash = %+v, %v; want %+v", got, err, ci)
		}
		_, err = s.TokenByHash(ctx, secretHash("nobody"))
		wantErr(t, err, store.ErrNotFound, "no token has this secret")

		revoked, err := s.RevokeToken(ctx, "ci")
		if err != nil || revoked.RevokedAt.IsZero() || revoked.Hash != ci.Hash {
			t.Fatalf("RevokeToken = %+v, %v", revoked, err)
		}
		if again, err := s.RevokeToken(ctx, "ci"); err != nil || again != revoked {
			t.Fatalf("RevokeToken again = %+v, %v; want %+v", again, err, revoked)
		}
		if got, err := s.TokenByHash(ctx, secretHash("ci")); err != nil || got != revoked {
			t.Fatalf("TokenByHash of a revoked token = %+v, %v; want %+v", got, err, revoked)
		}
		_, err = s.RevokeToken(ctx, "nobody")
		wantErr(t, err, store.ErrNotFound, `token "nobody" does not exist`)
		_, err = s.CreateToken(ctx, store.NewToken{Name: "ci", Role: store.RoleViewer, Hash: secretHash("ci-again")})
		wantErr(t, err, store.ErrConflict, `token "ci" already exists`)

		wantLines(t, "audit", auditOf(t, s, store.AuditKindToken), []string{
			"bo token ci created: token ci created (deployer)",
			"ada token alice created: token alice created (viewer)",
			"ada token ci revoked: token ci revoked",
		})
		entries, _, err := s.ListAudit(ctx, store.AuditQuery{Kind: store.AuditKindToken})
		if err != nil || len(entries) != 3 {
			t.Fatalf("ListAudit(token) = %d entries, %v", len(entries), err)
		}
		rev, created := entries[0], entries[2]
		if rev.Revision != 1 || rev.HashBefore != created.HashAfter || rev.HashAfter == rev.HashBefore || created.HashBefore != "" {
			t.Errorf("audit entries do not chain at revision 1: %+v", entries)
		}
		if rev.HashAfter == secretHash("ci") || created.HashAfter == secretHash("ci") {
			t.Errorf("an audit hash is the token's secret hash: %+v", entries)
		}
		wantRevision(t, s, 1)
	})
}

// TestCreateFirstToken has replicas starting together each try to create
// the first token: one does.
func TestCreateFirstToken(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			const replicas = 4
			stores := make([]store.Store, replicas)
			for i := range stores {
				stores[i] = storetest.Open(t, b)
			}
			created := make([]bool, replicas)
			var wg sync.WaitGroup
			for i, s := range stores {
				wg.Go(func() {
					name := fmt.Sprint("admin-", i)
					var err error
					created[i], err = s.CreateFirstToken(ctx, store.NewToken{Name: name, Role: store.RoleAdmin, Hash: secretHash(name), CreatedBy: "first start"})
					if err != nil {
						t.Errorf("replica %d: CreateFirstToken: %v", i, err)
					}
				})
			}
			wg.Wait()
			n := 0
			for _, c := range created {
				if c {
					n++
				}
			}
			if n != 1 {
				t.Fatalf("created by %v, want exactly one replica", created)
			}
			list, err := stores[0].ListTokens(ctx)
			if err != nil || len(list) != 1 || list[0].Role != store.RoleAdmin {
				t.Fatalf("ListTokens = %+v, %v; want one admin token", list, err)
			}
			again, err := stores[0].CreateFirstToken(ctx, store.NewToken{Name: "admin", Role: store.RoleAdmin, Hash: secretHash("admin")})
			if err != nil || again {
				t.Fatalf("CreateFirstToken with a token stored = %t, %v; want false", again, err)
			}
			wantLines(t, "audit", auditOf(t, stores[0], store.AuditKindToken), []string{
				fmt.Sprintf("first start token %s created: token %s created (admin)", list[0].Name, list[0].Name),
			})
			wantRevision(t, stores[0], 0)
		})
	}
}

func TestJoinTokens(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := store.WithAuthor(context.Background(), "ada")
		now := time.Now()
		prod := map[string]string{"env": "prod"}

		once, err := s.CreateJoinToken(ctx, store.NewJoinToken{ID: "j-once", Hash: secretHash("once"), Labels: prod, Uses: 1, CreatedBy: "bo"})
		if err != nil {
			t.Fatal(err)
		}
		if once.ID != "j-once" || !maps.Equal(once.Labels, prod) || once.Uses != 1 || once.Used != 0 || once.CreatedBy != "bo" ||
			once.Agents == nil || len(once.Agents) != 0 || !once.ExpiresAt.IsZero() || !once.RevokedAt.IsZero() {
			t.Fatalf("CreateJoinToken = %+v", once)
		}
		for _, nt := range []store.NewJoinToken{
			{ID: "j-expired", Hash: secretHash("expired"), Uses: 5, ExpiresAt: now.Add(-time.Minute)},
			{ID: "j-revoked", Hash: secretHash("revoked"), Uses: 5},
			{ID: "j-many", Hash: secretHash("many"), Uses: 5, ExpiresAt: now.Add(time.Hour), Labels: map[string]string{"zone": "a"}},
		} {
			if _, err := s.CreateJoinToken(ctx, nt); err != nil {
				t.Fatal(err)
			}
		}
		_, err = s.CreateJoinToken(ctx, store.NewJoinToken{ID: "j-once", Hash: secretHash("other"), Uses: 1})
		wantErr(t, err, store.ErrConflict, `join token "j-once" already exists`)
		_, err = s.CreateJoinToken(ctx, store.NewJoinToken{ID: "j-zero", Hash: secretHash("zero")})
		wantErr(t, err, nil, "uses 0: want at least 1")

		revoked, err := s.RevokeJoinToken(ctx, "j-revoked")
		if err != nil || revoked.RevokedAt.IsZero() {
			t.Fatalf("RevokeJoinToken = %+v, %v", revoked, err)
		}
		if again, err := s.RevokeJoinToken(ctx, "j-revoked"); err != nil || !again.RevokedAt.Equal(revoked.RevokedAt) {
			t.Fatalf("RevokeJoinToken again = %+v, %v; want it kept revoked at %v", again, err, revoked.RevokedAt)
		}
		_, err = s.RevokeJoinToken(ctx, "j-nobody")
		wantErr(t, err, store.ErrNotFound, `join token "j-nobody" does not exist`)
		if _, err := s.RevokeAgent(ctx, "edge-bad"); err != nil {
			t.Fatal(err)
		}

		for _, tc := range []struct {
			name, secret, agent string
			sentinel            error
			text                string
		}{
			{"unknown", "nobody", "edge-1", store.ErrNotFound, "no join token has this secret"},
			{"expired", "expired", "edge-1", store.ErrRefused, "join token j-expired expired at "},
			{"revoked", "revoked", "edge-1", store.ErrRefused, "join token j-revoked was revoked at " + revoked.RevokedAt.Format(time.RFC3339Nano)},
			{"revoked agent", "many", "edge-bad", store.ErrRefused, "agent edge-bad was revoked at "},
		} {
			t.Run(tc.name, func(t *testing.T) {
				calls := 0
				_, err := s.Enroll(ctx, secretHash(tc.secret), tc.agent, now, issued(certFor("01"), &calls))
				wantErr(t, err, tc.sentinel, tc.text)
				if strings.Contains(err.Error(), secretHash(tc.secret)) || calls != 0 {
					t.Fatalf("err = %v after %d issues; want no secret named and nothing issued", err, calls)
				}
			})
		}

		// A failing issue leaves everything as it was.
		failure := errors.New("the CA is unreachable")
		_, err = s.Enroll(ctx, secretHash("once"), "edge-1", now, func() (store.Certificate, error) { return store.Certificate{}, failure })
		if !errors.Is(err, failure) {
			t.Fatalf("Enroll with a failing issue: err = %v, want %v", err, failure)
		}
		if _, err := s.GetAgent(ctx, "edge-1"); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("an enrollment that failed left agent edge-1: %v", err)
		}

		cert := certFor("0a1b")
		calls := 0
		spent, err := s.Enroll(ctx, secretHash("once"), "edge-1", now, issued(cert, &calls))
		if err != nil || calls != 1 {
			t.Fatalf("Enroll = %v after %d issues", err, calls)
		}
		if spent.Used != 1 || spent.Uses != 1 || fmt.Sprint(spent.Agents) != "[edge-1]" {
			t.Fatalf("Enroll = %+v; want 1 of 1 used by edge-1", spent)
		}
		a, err := s.GetAgent(ctx, "edge-1")
		if err != nil || a.EnrolledBy != "j-once" || a.CertSerial != cert.Serial || !a.CertNotAfter.Equal(cert.NotAfter) ||
			!maps.Equal(a.Labels, prod) || a.Connected || a.FirstSeen.IsZero() || !a.RevokedAt.IsZero() {
			t.Fatalf("enrolled agent = %+v, %v", a, err)
		}
		_, err = s.Enroll(ctx, secretHash("once"), "edge-2", now, issued(cert, &calls))
		wantErr(t, err, store.ErrRefused, "join token j-once is used up (1 of 1 uses)")

		// The expiry is judged at the time given.
		if _, err := s.Enroll(ctx, secretHash("many"), "edge-2", now.Add(2*time.Hour), issued(cert, &calls)); !errors.Is(err, store.ErrRefused) {
			t.Fatalf("Enroll after the expiry: err = %v, want ErrRefused", err)
		}
		for _, id := range []string{"edge-2", "edge-3", "edge-2"} {
			if _, err := s.Enroll(ctx, secretHash("many"), id, now, issued(certFor("02"), &calls)); err != nil {
				t.Fatal(err)
			}
		}

		list, err := s.ListJoinTokens(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for i, jt := range list {
			if i > 0 && jt.CreatedAt.After(list[i-1].CreatedAt) {
				t.Errorf("ListJoinTokens: %s, made at %s, after %s, made earlier", jt.ID, jt.CreatedAt, list[i-1].ID)
			}
			got = append(got, fmt.Sprintf("%s %d/%d %v revoked=%t", jt.ID, jt.Used, jt.Uses, jt.Agents, !jt.RevokedAt.IsZero()))
		}
		// Tokens made within one millisecond tie on their time: compare
		// what each holds, the order having been checked above.
		sort.Strings(got)
		wantLines(t, "ListJoinTokens", got, []string{
			"j-expired 0/5 [] revoked=false",
			"j-many 3/5 [edge-2 edge-3 edge-2] revoked=false",
			"j-once 1/1 [edge-1] revoked=false",
			"j-revoked 0/5 [] revoked=true",
		})
		wantRevision(t, s, 0)
	})
}

// TestEnrollConcurrent has agents enroll with a one-use token at once:
// exactly one gets in, on one store or on replicas.
func TestEnrollConcurrent(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			const agents = 8
			stores := []store.Store{storetest.Open(t, b), storetest.Open(t, b)}
			for round := range 3 {
				id := fmt.Sprint("j-", round)
				if _, err := stores[0].CreateJoinToken(ctx, store.NewJoinToken{ID: id, Hash: secretHash(id), Uses: 1}); err != nil {
					t.Fatal(err)
				}
				var (
					mu      sync.Mutex
					winners []string
					wg      sync.WaitGroup
				)
				for i := range agents {
					wg.Go(func() {
						agent := fmt.Sprintf("edge-%d-%d", round, i)
						_, err := stores[i%len(stores)].Enroll(ctx, secretHash(id), agent, time.Now(), func() (store.Certificate, error) {
							return certFor(fmt.Sprintf("%02x", i)), nil
						})
						switch {
						case err == nil:
							mu.Lock()
							winners = append(winners, agent)
							mu.Unlock()
						case !errors.Is(err, store.ErrRefused):
							t.Errorf("%s: Enroll: %v, want nil or ErrRefused", agent, err)
						}
					})
				}
				wg.Wait()
				if len(winners) != 1 {
					t.Fatalf("round %d: enrolled %v with a one-use token, want exactly one", round, winners)
				}
				list, err := stores[1].ListJoinTokens(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if jt := list[0]; jt.ID != id || jt.Used != 1 || fmt.Sprint(jt.Agents) != fmt.Sprint(winners) {
					t.Fatalf("round %d: join token = %+v, want used once by %v", round, jt, winners)
				}
				if a, err := stores[1].GetAgent(ctx, winners[0]); err != nil || a.EnrolledBy != id {
					t.Fatalf("round %d: winner = %+v, %v", round, a, err)
				}
			}
			wantRevision(t, stores[0], 0)
		})
	}
}

// TestEnrolledLabels: an enrolled agent's labels are those it states,
// overridden by its join token's.
func TestEnrolledLabels(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		tokenLabels := map[string]string{"env": "prod", "zone": "a"}
		if _, err := s.CreateJoinToken(ctx, store.NewJoinToken{ID: "j-1", Hash: secretHash("j-1"), Labels: tokenLabels, Uses: 3}); err != nil {
			t.Fatal(err)
		}
		sayHello := func(id string, labels map[string]string) store.Agent {
			t.Helper()
			if err := s.AgentHello(ctx, store.AgentHello{ID: id, Labels: labels, BuildVersion: "v1"}); err != nil {
				t.Fatal(err)
			}
			a, err := s.GetAgent(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			return a
		}
		enroll := func(id string) {
			t.Helper()
			if _, err := s.Enroll(ctx, secretHash("j-1"), id, time.Now(), func() (store.Certificate, error) { return certFor("0c"), nil }); err != nil {
				t.Fatal(err)
			}
		}
		stated := map[string]string{"env": "dev", "rack": "7"}
		merged := map[string]string{"env": "prod", "zone": "a", "rack": "7"}

		// Enrolled first, then says hello.
		enroll("edge-1")
		if a := sayHello("edge-1", stated); !maps.Equal(a.Labels, merged) || !a.Connected || a.BuildVersion != "v1" {
			t.Fatalf("enrolled agent after hello = %+v; want labels %v", a, merged)
		}
		if a := sayHello("edge-1", nil); !maps.Equal(a.Labels, tokenLabels) {
			t.Fatalf("enrolled agent stating no labels = %v; want %v", a.Labels, tokenLabels)
		}

		// Says hello first (an agent from before enrollment), then enrolls.
		if a := sayHello("edge-2", stated); !maps.Equal(a.Labels, stated) || a.EnrolledBy != "" {
			t.Fatalf("agent never enrolled = %+v; want labels %v", a, stated)
		}
		enroll("edge-2")
		a, err := s.GetAgent(ctx, "edge-2")
		if err != nil || !maps.Equal(a.Labels, merged) || !a.Connected || a.BuildVersion != "v1" {
			t.Fatalf("agent enrolled after hello = %+v, %v; want labels %v, its hello kept", a, err, merged)
		}
		if a := sayHello("edge-2", stated); !maps.Equal(a.Labels, merged) {
			t.Fatalf("its next hello = %v; want %v", a.Labels, merged)
		}
	})
}

func TestAgentCertified(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if _, err := s.CreateJoinToken(ctx, store.NewJoinToken{ID: "j-1", Hash: secretHash("j-1"), Uses: 2}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"edge-1", "edge-2"} {
			if _, err := s.Enroll(ctx, secretHash("j-1"), id, time.Now(), func() (store.Certificate, error) { return certFor("01"), nil }); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.AgentHello(ctx, store.AgentHello{ID: "edge-old"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeAgent(ctx, "edge-2"); err != nil {
			t.Fatal(err)
		}

		renewed := store.Certificate{Serial: "02", NotAfter: time.Now().Add(48 * time.Hour).UTC().Truncate(time.Millisecond)}
		if err := s.AgentCertified(ctx, "edge-1", renewed); err != nil {
			t.Fatal(err)
		}
		if a, err := s.GetAgent(ctx, "edge-1"); err != nil || a.CertSerial != "02" || !a.CertNotAfter.Equal(renewed.NotAfter) || a.EnrolledBy != "j-1" {
			t.Fatalf("renewed agent = %+v, %v", a, err)
		}
		for _, tc := range []struct {
			id       string
			sentinel error
			text     string
		}{
			{"edge-nobody", store.ErrNotFound, `agent "edge-nobody" does not exist`},
			{"edge-old", store.ErrNotFound, `agent "edge-old" never enrolled`},
			{"edge-2", store.ErrRefused, "agent edge-2 was revoked at "},
		} {
			t.Run(tc.id, func(t *testing.T) {
				wantErr(t, s.AgentCertified(ctx, tc.id, renewed), tc.sentinel, tc.text)
			})
		}
		if a, err := s.GetAgent(ctx, "edge-2"); err != nil || a.CertSerial != "01" {
			t.Fatalf("a refused renewal changed the agent: %+v, %v", a, err)
		}
		wantRevision(t, s, 0)
	})
}

func TestRevokeAgent(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		ctx := context.Background()
		if err := s.AgentHello(ctx, store.AgentHello{ID: "edge-1", Labels: map[string]string{"env": "prod"}}); err != nil {
			t.Fatal(err)
		}
		if got, err := s.RevokedAgents(ctx); err != nil || len(got) != 0 {
			t.Fatalf("RevokedAgents before = %v, %v", got, err)
		}

		known, err := s.RevokeAgent(ctx, "edge-1")
		if err != nil || known.RevokedAt.IsZero() || known.Labels["env"] != "prod" || !known.Connected {
			t.Fatalf("RevokeAgent of a known agent = %+v, %v", known, err)
		}
		unseen, err := s.RevokeAgent(ctx, "edge-unseen")
		if err != nil || unseen.ID != "edge-unseen" || unseen.RevokedAt.IsZero() || unseen.Labels == nil || len(unseen.Labels) != 0 ||
			unseen.Connected || unseen.FirstSeen.IsZero() || unseen.LastSeen.IsZero() || unseen.EnrolledBy != "" {
			t.Fatalf("RevokeAgent of an unseen id = %+v, %v", unseen, err)
		}
		if got, err := s.GetAgent(ctx, "edge-unseen"); err != nil || !got.RevokedAt.Equal(unseen.RevokedAt) {
			t.Fatalf("GetAgent = %+v, %v; want revoked at %v", got, err, unseen.RevokedAt)
		}
		if again, err := s.RevokeAgent(ctx, "edge-unseen"); err != nil || !again.RevokedAt.Equal(unseen.RevokedAt) {
			t.Fatalf("RevokeAgent again = %+v, %v; want it kept revoked at %v", again, err, unseen.RevokedAt)
		}
		got, err := s.RevokedAgents(ctx)
		want := map[string]time.Time{"edge-1": known.RevokedAt, "edge-unseen": unseen.RevokedAt}
		if err != nil || !maps.EqualFunc(got, want, time.Time.Equal) {
			t.Fatalf("RevokedAgents = %v, %v; want %v", got, err, want)
		}
		_, err = s.RevokeAgent(ctx, "")
		wantErr(t, err, nil, "the id is empty")
		wantRevision(t, s, 0)
	})
}

// TestTrustAudit: every change of trust state leaves audit entries at the
// current revision, with its author and summary, and none bumps it.
func TestTrustAudit(t *testing.T) {
	eachBackend(t, func(t *testing.T, s store.Store) {
		bg := context.Background()
		deploy(t, s, pkg("hello", []string{"hello.greet"}, "hello.go", "package hello"))
		ada := store.WithAuthor(bg, "ada")

		if _, _, _, err := s.InitCA(store.WithAuthor(bg, "control plane"), []byte("cert"), []byte("key")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateFirstToken(bg, store.NewToken{Name: "admin", Role: store.RoleAdmin, Hash: secretHash("admin"), CreatedBy: "first start"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateToken(ada, store.NewToken{Name: "ci", Role: store.RoleDeployer, Hash: secretHash("ci")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeToken(ada, "ci"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateJoinToken(ada, store.NewJoinToken{ID: "j-abc", Hash: secretHash("j-abc"), Uses: 2, Labels: map[string]string{"zone": "a", "env": "prod"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Enroll(bg, secretHash("j-abc"), "edge-1", time.Now(), func() (store.Certificate, error) { return certFor("0a"), nil }); err != nil {
			t.Fatal(err)
		}
		renewed := certFor("0b")
		if err := s.AgentCertified(bg, "edge-1", renewed); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeAgent(ada, "edge-1"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.RevokeJoinToken(store.WithAuthor(bg, "bo"), "j-abc"); err != nil {
			t.Fatal(err)
		}
		// Refusals and repeats change nothing and leave no entry.
		if _, err := s.RevokeAgent(ada, "edge-1"); err != nil {
			t.Fatal(err)
		}
		if err := s.AgentCertified(bg, "edge-1", renewed); !errors.Is(err, store.ErrRefused) {
			t.Fatalf("AgentCertified of a revoked agent: %v", err)
		}

		wantLines(t, "audit", auditOf(t, s, store.AuditKindCA, store.AuditKindToken, store.AuditKindJoinToken, store.AuditKindAgent), []string{
			"control plane ca ca created: CA created",
			"first start token admin created: token admin created (admin)",
			"ada token ci created: token ci created (deployer)",
			"ada token ci revoked: token ci revoked",
			"ada join-token j-abc created: join token j-abc created (2 uses, labels env=prod,zone=a)",
			"agent:edge-1 agent edge-1 enrolled: agent edge-1 enrolled with join token j-abc",
			"agent:edge-1 join-token j-abc updated: join token j-abc used by agent edge-1 (1 of 2 uses)",
			"agent:edge-1 agent edge-1 certified: agent edge-1 certified (serial 0b, expires " + renewed.NotAfter.Format(time.RFC3339Nano) + ")",
			"ada agent edge-1 revoked: agent edge-1 revoked",
			"bo join-token j-abc revoked: join token j-abc revoked",
		})

		entries, truncated, err := s.ListAudit(bg, store.AuditQuery{})
		if err != nil || truncated {
			t.Fatal(err, truncated)
		}
		if e := entries[len(entries)-1]; e.Kind != store.AuditKindPackage || e.Summary == "" {
			t.Fatalf("oldest entry = %+v, want the deploy with its revision's summary", e)
		}
		for _, e := range entries {
			if e.Revision != 1 {
				t.Errorf("entry %+v: revision %d, want 1", e, e.Revision)
			}
		}
		// An agent's entries chain: each starts from the last one's hash.
		var agent []store.AuditEntry
		for _, e := range entries {
			if e.Kind == store.AuditKindAgent {
				agent = append([]store.AuditEntry{e}, agent...)
			}
		}
		if len(agent) != 3 || agent[0].HashBefore != "" || agent[1].HashBefore != agent[0].HashAfter || agent[2].HashBefore != agent[1].HashAfter {
			t.Errorf("the agent's entries do not chain: %+v", agent)
		}
		if got, _, err := s.ListAudit(bg, store.AuditQuery{Kind: store.AuditKindJoinToken}); err != nil || len(got) != 3 || got[0].Action != store.AuditRevoked {
			t.Errorf("ListAudit(join-token) = %+v, %v; want 3 entries, the revocation first", got, err)
		}
		if got, _, err := s.ListAudit(bg, store.AuditQuery{Author: "agent:edge-1"}); err != nil || len(got) != 3 {
			t.Errorf("ListAudit(author agent:edge-1) = %+v, %v; want 3 entries", got, err)
		}
		wantRevision(t, s, 1)

		// A later config change comes first, with its own summary.
		deploy(t, s, pkg("hello", []string{"hello.greet"}, "hello.go", "package hello // 2"))
		entries, _, err = s.ListAudit(bg, store.AuditQuery{Limit: 2})
		if err != nil || entries[0].Revision != 2 || entries[0].Kind != store.AuditKindPackage || entries[1].Summary != "join token j-abc revoked" {
			t.Fatalf("newest entries = %+v, %v", entries, err)
		}
	})
}

// TestMigrateAgentsTrust: an agent stored before enrollment existed (its
// trust columns are NULL), in a database made before schema versions,
// reads with no trust state, and says hello as before.
func TestMigrateAgentsTrust(t *testing.T) {
	for _, b := range storetest.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			ctx := context.Background()
			seedVersion1(t, b)
			s := storetest.Open(t, b)
			a, err := s.GetAgent(ctx, store.PreviousAgent)
			if err != nil || !a.RevokedAt.IsZero() || !a.CertNotAfter.IsZero() || a.CertSerial != "" || a.EnrolledBy != "" {
				t.Fatalf("migrated agent = %+v, %v; want no trust state", a, err)
			}
			labels := map[string]string{"env": "old"}
			if err := s.AgentHello(ctx, store.AgentHello{ID: store.PreviousAgent, Labels: labels}); err != nil {
				t.Fatal(err)
			}
			if a, err = s.GetAgent(ctx, store.PreviousAgent); err != nil || !maps.Equal(a.Labels, labels) {
				t.Fatalf("after hello = %+v, %v; want labels %v", a, err, labels)
			}
			if got, err := s.RevokedAgents(ctx); err != nil || len(got) != 0 {
				t.Fatalf("RevokedAgents = %v, %v", got, err)
			}
		})
	}
}
