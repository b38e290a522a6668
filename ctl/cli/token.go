package cli

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/types/known/timestamppb"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

func (a *app) newTokenCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "token",
		Aliases: []string{"tokens"},
		Short:   "Manage the bearer tokens of the admin API (admin role)",
		Long: `Every call to the admin API carries a bearer token, and the token's role
says what it may do:

  viewer    reads config, agents, audit and statistics, and watches tails
  deployer  also deploys, changes config, invokes services, runs jobs, pings
  admin     also manages tokens, join tokens, agent revocation and keys

The control plane keeps only a hash of each token: its secret is shown
once, when it is made. On first start the control plane writes the first
admin token's secret to weft-admin.token beside its database. Managing
tokens needs the admin role.`,
	}
	cmd.AddCommand(a.newTokenCreateCmd(), a.newTokenListCmd(), a.newTokenRevokeCmd())
	return cmd
}

// roles are the roles --role takes, weakest first.
var roles = []string{"viewer", "deployer", "admin"}

// parseRole parses --role.
func parseRole(v string) (adminv1.Role, error) {
	if strings.TrimSpace(v) == "" {
		return 0, errors.New("--role is required: viewer, deployer or admin")
	}
	s, err := oneOf("--role", v, roles)
	if err != nil {
		return 0, err
	}
	switch s {
	case "viewer":
		return adminv1.Role_ROLE_VIEWER, nil
	case "deployer":
		return adminv1.Role_ROLE_DEPLOYER, nil
	default:
		return adminv1.Role_ROLE_ADMIN, nil
	}
}

// roleName renders a role as --role takes it.
func roleName(r adminv1.Role) string {
	switch r {
	case adminv1.Role_ROLE_VIEWER:
		return "viewer"
	case adminv1.Role_ROLE_DEPLOYER:
		return "deployer"
	case adminv1.Role_ROLE_ADMIN:
		return "admin"
	default:
		return "unknown"
	}
}

// tokenNameRe is what a token name may hold, as the control plane says.
var tokenNameRe = regexp.MustCompile(`^[A-Za-z0-9._-]+$`)

// checkTokenName refuses a name a token cannot have.
func checkTokenName(name string) error {
	if !tokenNameRe.MatchString(name) {
		return fmt.Errorf("token name %q: want letters, digits, '.', '_' and '-'", name)
	}
	return nil
}

// ttlSeconds checks a --ttl flag and returns it in whole seconds. zeroOK
// says whether 0 is allowed (it means "never expires").
func ttlSeconds(flag string, d time.Duration, zeroOK bool) (int64, error) {
	switch {
	case d < 0:
		return 0, fmt.Errorf("--%s %s: must not be negative", flag, d)
	case d == 0 && !zeroOK:
		return 0, fmt.Errorf("--%s %s: must be positive", flag, d)
	case d%time.Second != 0:
		return 0, fmt.Errorf("--%s %s: want whole seconds", flag, d)
	}
	return int64(d / time.Second), nil
}

// stateNow says whether something that may expire or be revoked still
// works: "active", "expired" or "revoked".
func stateNow(now time.Time, expires, revoked *timestamppb.Timestamp) string {
	switch {
	case revoked != nil:
		return "revoked"
	case expires != nil && !now.Before(expires.AsTime()):
		return "expired"
	default:
		return "active"
	}
}
