package cli

import (
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newAgentTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token",
		Aliases: []string{"tokens"},
		Short:   "Manage join tokens, with which new agents enroll (admin role)",
		Long: `A join token lets new agents enroll: weft-agent trades it for a
certificate bound to its id, checking the control plane's CA by its
fingerprint first. A token works for a number of enrollments (--uses)
until it expires (--ttl), and gives the agents that enroll with it its
labels. Its secret is shown once, in the command to run on the agent's
host. Managing join tokens needs the admin role.`,
	}
	cmd.AddCommand(a.newAgentTokenCreateCmd(), a.newAgentTokenListCmd(), a.newAgentTokenRevokeCmd())
	return cmd
}

// shellSafe matches words a POSIX shell takes as they are.
var shellSafe = regexp.MustCompile(`^[A-Za-z0-9._:/@%+=,-]+$`)

// shellQuote quotes s for a POSIX shell, so that a printed command can be
// pasted as it is.
func shellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// joinTokenState says whether a join token still lets agents enroll:
// "active", "used up", "expired" or "revoked".
func joinTokenState(jt *adminv1.JoinToken, now time.Time) string {
	s := stateNow(now, jt.GetExpiresAt(), jt.GetRevokedAt())
	if s == "active" && jt.GetUses() > 0 && jt.GetUsed() >= jt.GetUses() {
		return "used up"
	}
	return s
}
