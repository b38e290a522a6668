package cli

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// auditKinds are the kinds of object --kind of audit takes, each with how
// a sentence names one.
var auditKinds = []struct{ kind, noun string }{
	{"package", "package"},
	{"channel", "channel"},
	{"security", "security definition"},
	{"outgoing", "outgoing connection"},
	{"job", "job"},
	{"token", "token"},
	{"join-token", "join token"},
	{"agent", "agent"},
	{"ca", "CA"},
	{"secrets-key", "secrets key"},
}

// defaultAuditLimit is how many entries the control plane returns when
// --limit is 0.
const defaultAuditLimit = 1000

// summaryWidth is how much of a revision's summary the audit table shows.
const summaryWidth = 60

// auditFlags are the flags of weftctl audit.
type auditFlags struct {
	since     time.Duration
	sinceText string // --since as given, for the messages
	who, kind string
	limit     int32
}

// sinceFlag is --since of audit: a daysDuration that keeps the text it was
// given, so that --since 24h is said back as 24h rather than 1d.
type sinceFlag struct{ f *auditFlags }

func (s sinceFlag) String() string { return s.f.sinceText }

func (s sinceFlag) Type() string { return "duration" }

func (s sinceFlag) Set(v string) error {
	if err := (*daysDuration)(&s.f.since).Set(v); err != nil {
		return err
	}
	s.f.sinceText = v
	return nil
}

func (a *app) newAuditCmd() *cobra.Command {
	f := auditFlags{}
	cmd := &cobra.Command{
		Use:   "audit [--since 24h] [--who NAME] [--kind package|channel|security|outgoing|job|token|join-token|agent|ca|secrets-key] [--limit N]",
		Short: "List config changes, newest first: who made each, when, and to what",
		Long: `audit lists the changes to the config, newest first: one line per object a
revision created, updated or deleted, whatever made it (deploy, rollback,
undeploy, the channel, security, outgoing and job commands, import, the
pickup directory, --config-dir, --sources).

WHO is the caller (local until the admin API has tokens) or the control
plane's own way in: pickup, config-dir, sources. BEFORE and AFTER are the
first digits of the sha256 of the object's stored content before and after
the change (a package's: its files'); a security definition's covers its
sealed secrets, so a changed secret shows as a changed hash and nothing
more (weftctl secrets rotate-key re-seals them: action resealed, next to
the secrets-key entry). SUMMARY is the revision's one-line summary.

--since keeps the last stretch of time (all unless set), --who one caller,
--kind one kind of object. The control plane returns the newest 1000
entries unless --limit says otherwise, and says when it left older ones
out. -o json and -o yaml print its answer.`,
		Example: `  weftctl audit --since 24h
  weftctl audit --kind security --since 7d
  weftctl audit --who pickup --limit 20
  weftctl audit -o json | jq '.entries[] | select(.action == "deleted")'`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.check(); err != nil {
				return err
			}
			req := &adminv1.ListAuditRequest{Who: f.who, Kind: f.kind, Limit: f.limit}
			if f.since > 0 {
				req.Since = durationpb.New(f.since)
			}
			resp, err := call(cmd.Context(), a, "list the audit trail", func(ctx context.Context, c *conn) (*adminv1.ListAuditResponse, error) {
				return c.config.ListAudit(ctx, req)
			})
			if err != nil {
				return err
			}
			if a.json() {
				return a.printJSON(resp)
			}
			return a.printAuditTable(resp, f)
		},
	}
	fl := cmd.Flags()
	fl.Var(sinceFlag{&f}, "since", "the changes of this last stretch of time, such as 90m, 24h or 7d (default: all)")
	fl.StringVar(&f.who, "who", "", "the changes this caller made, such as local or pickup (default: anyone's)")
	fl.StringVar(&f.kind, "kind", "", "the changes to one kind of object: package, channel, security, outgoing, job, token, join-token, agent, ca or secrets-key (default: all)")
	fl.Int32Var(&f.limit, "limit", 0, "show at most the newest N changes (0: the control plane's default, 1000)")
	return cmd
}

// check says which flag is wrong.
func (f *auditFlags) check() error {
	if f.since < 0 {
		return fmt.Errorf("--since %s: must not be negative", f.sinceText)
	}
	if f.kind != "" && !slices.ContainsFunc(auditKinds, func(k struct{ kind, noun string }) bool { return k.kind == f.kind }) {
		return fmt.Errorf("--kind %q: want package, channel, security, outgoing, job, token, join-token, agent, ca or secrets-key", f.kind)
	}
	if f.limit < 0 {
		return fmt.Errorf("--limit %d: must not be negative (0 is the control plane's default, %d)", f.limit, defaultAuditLimit)
	}
	return nil
}

// printAuditTable writes one row per entry, then, on stderr, whether older
// entries were left out.
func (a *app) printAuditTable(resp *adminv1.ListAuditResponse, f auditFlags) error {
	if len(resp.GetEntries()) == 0 {
		_, err := fmt.Fprintln(a.stdout, f.nothing())
		return err
	}
	now := a.now()
	t := newTable(a.stdout, "REVISION", "WHEN", "WHO", "KIND", "NAME", "ACTION", "BEFORE", "AFTER", "SUMMARY")
	for _, e := range resp.GetEntries() {
		t.row(strconv.FormatInt(e.GetRevision(), 10), tableWhen(now, e.GetAt()), e.GetWho(), e.GetKind(), e.GetName(),
			e.GetAction(), shortHash(e.GetHashBefore()), shortHash(e.GetHashAfter()), shorten(e.GetSummary(), summaryWidth))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if resp.GetTruncated() {
		limit := f.limit
		if limit == 0 {
			limit = defaultAuditLimit
		}
		fmt.Fprintf(a.stderr, "older changes were left out: these are the newest %d; use --limit for more, or --since, --who or --kind for fewer\n", limit)
	}
	return nil
}

// nothing says that no change matched the flags, naming them.
func (f *auditFlags) nothing() string {
	var b strings.Builder
	b.WriteString("no change recorded")
	if f.kind != "" {
		noun := f.kind
		for _, k := range auditKinds {
			if k.kind == f.kind {
				noun = k.noun
			}
		}
		fmt.Fprintf(&b, " to any %s", noun)
	}
	if f.who != "" {
		fmt.Fprintf(&b, " by %s", f.who)
	}
	if f.since > 0 {
		fmt.Fprintf(&b, " in the last %s", f.sinceText)
	}
	return b.String()
}

// tableWhen renders a past time for a table: local time with its age, as
// "2026-03-04 04:06:07 (1h ago)"; empty for no time.
func tableWhen(now time.Time, ts *timestamppb.Timestamp) string {
	if ts == nil {
		return ""
	}
	return fmt.Sprintf("%s (%s)", tableTime(ts), ago(now, ts))
}
