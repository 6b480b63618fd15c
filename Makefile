# Gatewaystack build and test entry points. `make test` is what CI runs.
GO ?= go
export PATH := $(PATH):/usr/local/go/bin

.PHONY: test fmt-check vet unit build demo bench

## test: everything CI checks — formatting, vet, and the race-enabled test suite
test: fmt-check vet unit

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 -timeout 10m ./...

## build: the binary in bin/
build:
	$(GO) build -o bin/gatewaystack ./cmd/gatewaystack

## demo: the one-command demo
demo:
	$(GO) run ./cmd/gatewaystack demo

## bench: in-process benchmarks (gateway vs direct upstream, token verification)
bench:
	$(GO) test -run '^$$' -bench . -benchmem ./mcp ./auth
