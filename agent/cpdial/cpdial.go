// Package cpdial dials the control plane: the one place that reads an
// agent's --controlplane value. That is one address (host:port, or a gRPC
// target such as dns:///name:port, whose name may resolve to several
// replicas) or several host:port addresses separated by commas. The
// connection keeps to one replica and, when it loses that one, moves to the
// next that answers, trying them in the order given; and it never waits
// longer than the agent's --backoff-max between two attempts to connect,
// however long the control plane was away.
package cpdial

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
)

// scheme names the resolver of a list of addresses.
const scheme = "weft-controlplanes"

// jitter is the backoff's spread: each wait is its delay ± 20%.
const jitter = 0.2

// Addresses splits value, the --controlplane flag, into its addresses. A
// list of several takes host:port addresses only.
func Addresses(value string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(value, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			return nil, fmt.Errorf("--controlplane %q: an empty address; give host:port, or several separated by commas", value)
		}
		out = append(out, a)
	}
	if len(out) > 1 {
		for _, a := range out {
			if _, _, err := net.SplitHostPort(a); err != nil || strings.Contains(a, "://") {
				return nil, fmt.Errorf("--controlplane %q: %q: in a list each address is host:port", value, a)
			}
		}
	}
	return out, nil
}

// Rotate is value, a list of addresses, with its first moved last: dialled
// again, it tries the next replica first. One address is returned as it
// is.
func Rotate(value string) string {
	addrs, err := Addresses(value)
	if err != nil || len(addrs) < 2 {
		return value
	}
	return strings.Join(append(addrs[1:], addrs[0]), ",")
}

// Dial returns a client connection to the control plane at value (see
// Addresses), whose waits between connection attempts grow up to
// backoffMax. opts are added, such as the transport credentials; the
// credentials' handshake gets each replica's own host as its authority.
func Dial(value string, backoffMax time.Duration, opts ...grpc.DialOption) (*grpc.ClientConn, error) {
	addrs, err := Addresses(value)
	if err != nil {
		return nil, err
	}
	if backoffMax <= 0 {
		return nil, errors.New("cpdial: backoffMax must be positive")
	}
	target := addrs[0]
	// grpc's backoff spreads each wait by ±jitter after capping it at
	// MaxDelay: cap it lower, so that no wait passes backoffMax.
	bc := backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: jitter, MaxDelay: time.Duration(float64(backoffMax) / (1 + jitter))}
	opts = append(opts, grpc.WithConnectParams(grpc.ConnectParams{Backoff: bc, MinConnectTimeout: 5 * time.Second}))
	if len(addrs) > 1 {
		r := manual.NewBuilderWithScheme(scheme)
		state := resolver.State{}
		for _, a := range addrs {
			host, _, _ := net.SplitHostPort(a)
			state.Addresses = append(state.Addresses, resolver.Address{Addr: a, ServerName: host})
		}
		r.InitialState(state)
		target = scheme + ":///" + strings.Join(addrs, ",")
		opts = append(opts, grpc.WithResolvers(r))
	}
	return grpc.NewClient(target, opts...)
}
