package configfile

import (
	"strconv"
	"strings"
)

// A field's path in an object is written as the control plane writes it:
// files[0].content, agent_labels["tier"], interval.minutes. The functions
// here build such paths and split them into parts, so that a path from
// the control plane and one built while reading compare equal.

// fieldPath is the path of field name in the message at parent.
func fieldPath(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// indexPath is the path of element i of the list at parent.
func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// keyPath is the path of the value at key of the map at parent.
func keyPath(parent, key string) string {
	return parent + "[" + strconv.Quote(key) + "]"
}

// splitPath splits the path after an object's index, such as
// .files[0].content, into its parts: "files", "[0]", "content". A map key
// is written quoted, as keyPath writes it, however it was given. It stops
// at the first part it cannot read, returning the parts before it.
func splitPath(p string) []string {
	var parts []string
	for p != "" {
		var part string
		switch p[0] {
		case '.':
			end := strings.IndexAny(p[1:], ".[")
			if end < 0 {
				end = len(p) - 1
			}
			part, p = p[1:1+end], p[1+end:]
		case '[':
			part, p = splitBracket(p)
		}
		if part == "" {
			return parts
		}
		parts = append(parts, part)
	}
	return parts
}

// splitBracket reads the part in brackets p starts with: an index, or a
// map key quoted or not. It returns the part as written in a path, and
// what follows; "" when it cannot read one.
func splitBracket(p string) (part, rest string) {
	if strings.HasPrefix(p, `["`) {
		q, err := strconv.QuotedPrefix(p[1:])
		if err != nil || !strings.HasPrefix(p[1+len(q):], "]") {
			return "", p
		}
		key, _ := strconv.Unquote(q)
		return keyPath("", key), p[len(q)+2:]
	}
	inner, rest, ok := strings.Cut(p[1:], "]")
	if !ok || inner == "" {
		return "", p
	}
	if i, err := strconv.Atoi(inner); err == nil && i >= 0 {
		return indexPath("", i), rest
	}
	return keyPath("", inner), rest
}

// joinPath joins the parts splitPath made back into a path.
func joinPath(parts []string) string {
	var b strings.Builder
	for i, part := range parts {
		if i > 0 && part[0] != '[' {
			b.WriteByte('.')
		}
		b.WriteString(part)
	}
	return b.String()
}
