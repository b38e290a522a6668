package cli

import (
	"fmt"
	"strings"
)

// setting is one connection setting and where it came from, so that an
// error can name the flag, variable or context to fix.
type setting struct {
	value string
	// from is "--addr", "WEFT_ADDR", `context "prod"`, or empty for the
	// default.
	from string
}

// label names the setting in errors, such as `--ca` or `context "prod" ca`;
// field is how a context calls it.
func (s setting) label(field string) string {
	switch {
	case s.from == "":
		return "the default " + field
	case strings.HasPrefix(s.from, "context "):
		return s.from + " " + field
	default:
		return s.from
	}
}

// connSettings are the resolved connection settings.
type connSettings struct {
	addr, ca, token setting
	// context names the context that supplied any setting; empty for none.
	context   string
	plaintext bool
}

// resolveConn works out where and how to connect. Each setting comes from
// its flag, else its environment variable, else the context (--context,
// WEFT_CONTEXT, or the config file's current one), else the default. The
// config file is read only when a setting is left to it.
func (a *app) resolveConn() (connSettings, error) {
	s := connSettings{plaintext: a.plaintext}
	if s.plaintext {
		// Refuse rather than drop what was asked for on the command line.
		if a.changed("token") {
			return s, fmt.Errorf("--token with --plaintext: a token is never sent without TLS")
		}
		if a.changed("ca") {
			return s, fmt.Errorf("--ca with --plaintext: --plaintext dials without TLS")
		}
	}
	fromFlagOrEnv := func(flag, env, v string) (setting, bool) {
		if a.changed(flag) {
			return setting{value: v, from: "--" + flag}, true
		}
		if e := a.getenv(env); e != "" {
			return setting{value: e, from: env}, true
		}
		return setting{}, false
	}
	addr, haveAddr := fromFlagOrEnv("addr", "WEFT_ADDR", a.addr)
	ca, haveCA := fromFlagOrEnv("ca", "WEFT_CA", a.caFile)
	token, haveToken := fromFlagOrEnv("token", "WEFT_TOKEN", a.token)
	if s.plaintext {
		// --plaintext sends no token and checks no certificate.
		ca, token, haveCA, haveToken = setting{}, setting{}, true, true
	}

	name, nameFrom := "", ""
	switch {
	case a.changed("context"):
		name, nameFrom = strings.TrimSpace(a.contextName), "--context"
		if name == "" {
			return s, fmt.Errorf("--context is empty: want a context's name (see weftctl context list)")
		}
	case a.getenv("WEFT_CONTEXT") != "":
		name, nameFrom = strings.TrimSpace(a.getenv("WEFT_CONTEXT")), "WEFT_CONTEXT"
	}
	if name != "" || !haveAddr || !haveCA || !haveToken {
		path, cfg, err := a.loadConfigFor(name != "")
		if err != nil {
			return s, err
		}
		if name == "" && cfg != nil {
			name, nameFrom = cfg.CurrentContext, "current-context in "+path
		}
		if name != "" {
			c := cfg.find(name)
			if c == nil {
				return s, fmt.Errorf("%s names context %q, which %s does not hold (see weftctl context list)", nameFrom, name, path)
			}
			from := fmt.Sprintf("context %q", name)
			// The context's CA and token go only to the context's own
			// address: a token must not follow --addr elsewhere.
			own := !haveAddr || strings.TrimSpace(addr.value) == c.Address
			if !haveAddr && c.Address != "" {
				addr, haveAddr = setting{value: c.Address, from: from}, true
			}
			if own && !haveCA && c.CA != "" {
				ca = setting{value: c.CA, from: from}
			}
			if own && !haveToken && c.Token != "" {
				token = setting{value: c.Token, from: from}
			}
			s.context = name
		}
	}
	if !haveAddr {
		addr = setting{value: defaultAddr}
	}
	addr.value = strings.TrimSpace(addr.value)
	token.value = strings.TrimSpace(token.value)
	if err := checkToken(token); err != nil {
		return s, err
	}
	s.addr, s.ca, s.token = addr, ca, token
	return s, nil
}

// loadConfigFor reads the config file for resolveConn. Without a context
// named, a file that cannot be located is no file: weftctl then works
// from flags and environment alone.
func (a *app) loadConfigFor(contextNamed bool) (string, *ctlConfig, error) {
	if _, err := a.configPath(); err != nil {
		if contextNamed {
			return "", nil, err
		}
		return "", nil, nil
	}
	return a.loadConfig()
}

// checkToken refuses a token that cannot travel in a header, such as one
// with a line break pasted in.
func checkToken(t setting) error {
	for _, r := range t.value {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("%s: the token holds a space or a character that is not printable ASCII", t.label("token"))
		}
	}
	return nil
}
