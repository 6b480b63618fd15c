package config

// docs/configuration.md is generated from this package's types, their doc
// comments and SetDefaults; reference_test.go fails when it is stale.
//go:generate go run ./internal/refgen/cmd/configref -config . -out ../docs/configuration.md
