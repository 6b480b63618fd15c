package config_test

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/gatewaystack/gatewaystack/config/internal/refgen"
)

// The checked-in configuration reference is what the generator makes of
// the current config package: a field added, renamed, re-documented or
// given another default shows up in docs/configuration.md, or this fails.
func TestConfigurationReferenceIsCurrent(t *testing.T) {
	t.Parallel()
	want, err := refgen.Generate(".")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../docs/configuration.md")
	if err != nil {
		t.Fatalf("%v; run go generate ./config", err)
	}
	if bytes.Equal(got, want) {
		return
	}
	gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(gl), len(wl)); i++ {
		var g, w string
		if i < len(gl) {
			g = gl[i]
		}
		if i < len(wl) {
			w = wl[i]
		}
		if g != w {
			t.Fatalf("docs/configuration.md is stale: run go generate ./config\nline %d is\n\t%s\nand should be\n\t%s", i+1, g, w)
		}
	}
}
