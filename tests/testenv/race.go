//go:build race

package testenv

// raceEnabled says the test binary runs with the race detector, so the
// binaries under test are built with it too.
const raceEnabled = true
