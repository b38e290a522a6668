// Package outgoing holds Weft's outgoing HTTP connections: named remote
// endpoints (address, path template, method, data format, timeout, TLS,
// pool) that services call by name. Each connection owns its own
// http.Client and Transport, so a connection's pool, TLS settings and
// timeouts never leak into another's. The agent's engine builds the set
// for each snapshot, carrying over the connections that did not change.
package outgoing

import "github.com/weft-dev/weft/agent/shared/outgoingconf"

// Config describes one outgoing HTTP connection. It is defined, with its
// check, in package agent/shared/outgoingconf, with which the control plane
// checks connections too.
type Config = outgoingconf.Config
