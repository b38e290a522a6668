package store

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"

	"gorm.io/gorm"
)

// ErrOtherOrigin means an outgoing connection would send a security
// definition's credentials to another address than the connections that
// use it already: the credentials of one definition go to one origin.
var ErrOtherOrigin = errors.New("the credentials go to another address")

// checkCredentialOrigins refuses a state in which the outgoing
// connections using one security definition name more than one origin
// (scheme, host and port). Otherwise whoever may add a connection could
// point a new one at a server of their own and have the agents send it
// credentials that no read shows: to send a definition's credentials
// elsewhere, the connection that uses it must move, which the audit
// trail spells out (see addressMoved). Writes call it last, in their
// transaction.
func checkCredentialOrigins(tx *gorm.DB) error {
	conns, err := outgoings.list(tx.Where("security <> ''"))
	if err != nil {
		return fmt.Errorf("read the outgoing connections' addresses: %w", err)
	}
	type use struct{ origin, conn string }
	first := map[string]use{}
	var problems []string
	for _, c := range conns {
		o := origin(c.GetAddress())
		u, seen := first[c.GetSecurity()]
		switch {
		case !seen:
			first[c.GetSecurity()] = use{o, c.GetName()}
		case u.origin != o:
			problems = append(problems, fmt.Sprintf("outgoing connection %q names %s, but security definition %q's credentials go to %s (outgoing connection %q): give it a definition of its own",
				c.GetName(), o, c.GetSecurity(), u.origin, u.conn))
		}
	}
	if len(problems) > 0 {
		sort.Strings(problems)
		return fmt.Errorf("%s: %w", strings.Join(problems, "; "), ErrOtherOrigin)
	}
	return nil
}

// origin is an address's scheme://host:port, lower case, with the port
// its scheme implies when it names none.
func origin(address string) string {
	u, err := url.Parse(address)
	if err != nil {
		return address
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[strings.ToLower(u.Scheme)]
	}
	return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Hostname()) + ":" + port
}
