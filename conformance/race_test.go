//go:build race

package conformance

// raceEnabled: the tests run with the race detector, and so does the binary
// they build.
const raceEnabled = true
