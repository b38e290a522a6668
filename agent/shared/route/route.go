// Package route parses channel path templates and orders channels into
// routes. The agents' router serves requests with these routes and the
// control plane's door checks channels with them, so that the door refuses
// exactly the paths, and the collisions, an agent would.
package route

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strings"

	adminv1 "github.com/weft-dev/weft/proto/weft/admin/v1"
)

// MaxPathLength bounds a channel's path template: the control plane's
// database keeps up to 512 bytes, on MySQL as on SQLite.
const MaxPathLength = 512

var (
	paramPattern   = regexp.MustCompile(`^\{([A-Za-z_][A-Za-z0-9_]*)\}$`)
	literalPattern = regexp.MustCompile(`^[A-Za-z0-9._~!$&'()*+,;=:@-]+$`)
)

// segment is one segment of a path template: a literal, or a param.
type segment struct {
	literal string
	param   string
}

// Route is a parsed channel.
type Route struct {
	// Channel is the channel the route serves.
	Channel *adminv1.Channel
	segs    []segment
}

// CheckPath reports whether path is a valid channel path template: it
// starts with a slash; its segments are literals or whole-segment params in
// braces, such as /api/orders/{id}; param names are unique.
func CheckPath(path string) error {
	_, err := parsePath(path)
	return err
}

func parsePath(path string) ([]segment, error) {
	switch {
	case path == "":
		return nil, errors.New("is required")
	case len(path) > MaxPathLength:
		return nil, fmt.Errorf("%d bytes; the limit is %d", len(path), MaxPathLength)
	case path[0] != '/':
		return nil, fmt.Errorf("%q must start with /", path)
	case path == "/":
		return nil, nil
	case strings.HasSuffix(path, "/"):
		return nil, fmt.Errorf("%q must not end with /", path)
	}
	var segs []segment
	seen := map[string]bool{}
	for i, s := range strings.Split(path[1:], "/") {
		if s == "" {
			return nil, fmt.Errorf("%q: segment %d is empty", path, i+1)
		}
		if m := paramPattern.FindStringSubmatch(s); m != nil {
			if seen[m[1]] {
				return nil, fmt.Errorf("%q: param {%s} appears twice", path, m[1])
			}
			seen[m[1]] = true
			segs = append(segs, segment{param: m[1]})
			continue
		}
		if strings.ContainsAny(s, "{}") {
			return nil, fmt.Errorf("%q: segment %q: a param must be a whole segment such as {id}, with a name of letters, digits and _", path, s)
		}
		if !literalPattern.MatchString(s) {
			return nil, fmt.Errorf("%q: segment %q has a character not allowed in a URL path", path, s)
		}
		segs = append(segs, segment{literal: s})
	}
	return segs, nil
}

// Check reports whether channels can be served together: every path is
// valid, and no two channels take the same method on the same path shape
// (/a/{x} and /a/{y} are the same shape).
func Check(channels []*adminv1.Channel) error {
	_, err := Build(channels)
	return err
}

// Build parses channels and orders them so that the first match wins and
// is the most specific: at the first segment where two routes differ, a
// literal comes before a param. It fails as Check does.
func Build(channels []*adminv1.Channel) ([]Route, error) {
	var routes []Route
	var errs []error
	for _, ch := range channels {
		segs, err := parsePath(ch.GetPath())
		if err != nil {
			errs = append(errs, fmt.Errorf("channel %q: path %w", ch.GetName(), err))
			continue
		}
		routes = append(routes, Route{Channel: ch, segs: segs})
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	sort.SliceStable(routes, func(i, j int) bool { return less(routes[i].segs, routes[j].segs) })
	for i := 1; i < len(routes); i++ {
		for j := i - 1; j >= 0 && sameShape(routes[i].segs, routes[j].segs); j-- {
			a, b := routes[j].Channel, routes[i].Channel
			for _, m := range a.GetMethods() {
				if slices.Contains(b.GetMethods(), m) {
					errs = append(errs, fmt.Errorf("channels %q (%s) and %q (%s) both take %s on the same path", a.GetName(), a.GetPath(), b.GetName(), b.GetPath(), m))
				}
			}
		}
	}
	return routes, errors.Join(errs...)
}

func less(a, b []segment) bool {
	for i := 0; i < len(a) && i < len(b); i++ {
		ap, bp := a[i].param != "", b[i].param != ""
		switch {
		case ap != bp:
			return !ap
		case !ap && a[i].literal != b[i].literal:
			return a[i].literal < b[i].literal
		}
	}
	return len(a) < len(b)
}

func sameShape(a, b []segment) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if (a[i].param != "") != (b[i].param != "") || a[i].literal != b[i].literal {
			return false
		}
	}
	return true
}

// Match reports whether the escaped request path, without its leading
// slash, fits the route, and its params, unescaped. The error is a param
// that does not unescape: the path fits, but the request is bad.
func (r Route) Match(path string) (map[string]string, bool, error) {
	if segments(path) != len(r.segs) {
		return nil, false, nil
	}
	var params map[string]string
	rest := path
	for _, s := range r.segs {
		var part string
		part, rest, _ = strings.Cut(rest, "/")
		if s.param == "" {
			if part != s.literal {
				u, err := url.PathUnescape(part)
				if err != nil || u != s.literal {
					return nil, false, nil
				}
			}
			continue
		}
		if part == "" {
			return nil, false, nil
		}
		v, err := url.PathUnescape(part)
		if err != nil {
			return nil, true, fmt.Errorf("path param %s: %q is not a valid escaped URL segment", s.param, part)
		}
		if params == nil {
			params = make(map[string]string, len(r.segs))
		}
		params[s.param] = v
	}
	return params, true, nil
}

// segments counts the segments of an escaped URL path without its leading
// slash; that of "/" has none.
func segments(path string) int {
	if path == "" {
		return 0
	}
	return strings.Count(path, "/") + 1
}
