package cli

import (
	"fmt"
	"strconv"
	"strings"
)

// parseVersion parses a version number as given on the command line: 3 or
// v3. It must be positive.
func parseVersion(s string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimPrefix(strings.TrimSpace(s), "v"), 10, 64)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("version %q: want a version number such as 3 or v3", s)
	}
	return n, nil
}

// parsePackageRef parses PACKAGE or PACKAGE@VERSION (hello, hello@3,
// hello@v3); version 0 means the current one.
func parsePackageRef(s string) (name string, version int64, err error) {
	name, v, hasVersion := strings.Cut(s, "@")
	if strings.TrimSpace(name) == "" {
		return "", 0, fmt.Errorf("%q: want PACKAGE or PACKAGE@VERSION, such as hello or hello@3", s)
	}
	if !hasVersion {
		return name, 0, nil
	}
	version, err = parseVersion(v)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", s, err)
	}
	return name, version, nil
}

// versionLabel names an operation on a package version the way the control
// plane does in its messages, so that an error says it once:
// `get package "hello" v3`, without the version when it is 0.
func versionLabel(op, name string, version int64) string {
	if version == 0 {
		return fmt.Sprintf("%s %q", op, name)
	}
	return fmt.Sprintf("%s %q v%d", op, name, version)
}
