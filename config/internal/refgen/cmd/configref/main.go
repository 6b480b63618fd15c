// Command configref writes the configuration reference: go generate ./config
// runs it to regenerate docs/configuration.md from the config package.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/gatewaystack/gatewaystack/config/internal/refgen"
)

func main() {
	src := flag.String("config", ".", "directory of the config package's source")
	out := flag.String("out", "../docs/configuration.md", "file to write")
	flag.Parse()
	b, err := refgen.Generate(*src)
	if err != nil {
		fmt.Fprintln(os.Stderr, "configref:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, b, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "configref:", err)
		os.Exit(1)
	}
}
