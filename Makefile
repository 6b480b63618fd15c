# Gatewaystack build and test entry points. `make test` is what CI runs.
GO ?= go
NPM ?= npm
export PATH := $(PATH):/usr/local/go/bin

# Pinned third-party MCP servers for the interop tests (interop/doc.go).
# The npm ones are pinned in interop/npm/package.json and its lockfile.
GO_SDK_VERSION    := v1.8.0
GO_SDK_FIXTURE    := github.com/modelcontextprotocol/go-sdk/conformance/everything-server
EVERYTHING_SERVER := bin/everything-server
INTEROP_NPM       := interop/npm
NODE_MODULES      := $(INTEROP_NPM)/node_modules
# Written after a successful `npm ci`; older than the lockfile = reinstall.
NPM_STAMP         := $(NODE_MODULES)/.gatewaystack-npm-ci

# The official MCP clients, the official conformance suite and the Node 22
# binary it needs, for the tests in conformance/ (conformance/doc.go); pinned
# in conformance/npm/package.json and its lockfile.
CONFORMANCE_NPM          := conformance/npm
CONFORMANCE_NODE_MODULES := $(CONFORMANCE_NPM)/node_modules
CONFORMANCE_NPM_STAMP    := $(CONFORMANCE_NODE_MODULES)/.gatewaystack-npm-ci

# The Redis server the shared-store tests start on loopback ports of their
# own (internal/redistest); installed from Debian's packages when missing.
REDIS_SERVER ?= $(shell command -v redis-server 2>/dev/null || echo /usr/bin/redis-server)

# The headless browser the admin page test drives (mcp/adminpage_test.go);
# installed from Debian's packages when missing.
CHROMIUM ?= $(shell command -v chromium 2>/dev/null || echo /usr/bin/chromium)

.PHONY: test fmt-check vet tidy-check lint unit unit-norace fuzz fuzz-ci interop-tools conformance-tools conformance-report redis-tools chromium-tools build demo bench bench-go bench-smoke bench-steady soak

## test: everything CI checks — formatting, vet, and the race-enabled test suite
test: interop-tools conformance-tools redis-tools chromium-tools fmt-check vet tidy-check lint unit unit-norace bench-smoke fuzz-ci

## redis-tools: install redis-server (apt-get) when it is missing; the tests start and stop their own
redis-tools:
	@if ! command -v redis-server >/dev/null 2>&1 && [ ! -x "$(REDIS_SERVER)" ]; then \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		echo "installing redis-server"; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server \
		|| { $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends redis-server; }; \
	fi

## chromium-tools: install chromium (apt-get) when it is missing; the admin page test starts its own headless one
chromium-tools:
	@if ! command -v chromium >/dev/null 2>&1 && [ ! -x "$(CHROMIUM)" ]; then \
		SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
		echo "installing chromium"; \
		$$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium \
		|| { $$SUDO apt-get update && $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; }; \
	fi

## interop-tools: install the pinned MCP servers the interop tests run
interop-tools: $(NPM_STAMP) $(EVERYTHING_SERVER)

$(NPM_STAMP): $(INTEROP_NPM)/package-lock.json $(INTEROP_NPM)/package.json
	$(NPM) ci --prefix $(INTEROP_NPM) --no-audit --no-fund
	@touch $@

## conformance-tools: install the pinned official clients, conformance suite and Node 22
conformance-tools: $(CONFORMANCE_NPM_STAMP)

$(CONFORMANCE_NPM_STAMP): $(CONFORMANCE_NPM)/package-lock.json $(CONFORMANCE_NPM)/package.json
	$(NPM) ci --prefix $(CONFORMANCE_NPM) --no-audit --no-fund
	@touch $@

# Installed only when missing (bump GO_SDK_VERSION: delete bin/ to reinstall).
$(EVERYTHING_SERVER):
	GOBIN=$(CURDIR)/bin $(GO) install $(GO_SDK_FIXTURE)@$(GO_SDK_VERSION)

# Tracked and new (not ignored) Go files; node_modules and bin/ are ignored.
fmt-check:
	@out=$$(gofmt -l $$(git ls-files --cached --others --exclude-standard '*.go' 2>/dev/null || find . -name '*.go' -not -path '*/node_modules/*')); \
	if [ -n "$$out" ]; then echo "gofmt needed on:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet ./...

# staticcheck, pinned, installed into bin/ when missing (bump the version:
# delete bin/staticcheck).
STATICCHECK_VERSION := v0.8.2
STATICCHECK         := bin/staticcheck

$(STATICCHECK):
	GOBIN=$(CURDIR)/bin $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

## lint: staticcheck over every package, tests included
lint: $(STATICCHECK)
	$(STATICCHECK) ./...

## tidy-check: go.mod and go.sum are what go mod tidy makes them
tidy-check:
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }

# The interop and conformance tests fail (not skip) when these point at
# missing tools.
unit: interop-tools conformance-tools redis-tools chromium-tools
	GATEWAYSTACK_REDIS_SERVER=$(REDIS_SERVER) GATEWAYSTACK_REQUIRE_REDIS=1 \
	GATEWAYSTACK_CHROMIUM=$(CHROMIUM) GATEWAYSTACK_REQUIRE_CHROMIUM=1 \
	GATEWAYSTACK_INTEROP_NODE_MODULES=$(CURDIR)/$(NODE_MODULES) \
	GATEWAYSTACK_INTEROP_EVERYTHING_SERVER=$(CURDIR)/$(EVERYTHING_SERVER) \
	GATEWAYSTACK_CONFORMANCE_NODE_MODULES=$(CURDIR)/$(CONFORMANCE_NODE_MODULES) \
	$(GO) test -race -count=1 -timeout 10m ./...

## unit-norace: the tests that measure memory with 4 MB inputs, which the race detector would slow twentyfold (their files are built with !race)
unit-norace:
	$(GO) test -count=1 -timeout 5m -run '^TestHugeIdentifiers' ./mcp

# The native Go fuzz targets, as package:name. Each runs on its own for
# FUZZTIME; -fuzz needs no -race. An input that fails is written to
# <package>/testdata/fuzz/<name>/ and from then on runs as a regression test
# in plain `go test`. FUZZMINIMIZETIME bounds the shrinking of each new input
# (go test's default, 60s, would stall short runs on large YAML and CEL
# inputs).
FUZZTIME ?= 1m
FUZZMINIMIZETIME ?= 10s
FUZZ_TARGETS := \
	./auth:FuzzVerify \
	./auth:FuzzAuthorizationHeader \
	./auth:FuzzChallenge \
	./auth:FuzzPRM \
	./mcp:FuzzMCPBody \
	./mcp:FuzzScanAgreesWithTheDecoderWalk \
	./config:FuzzLoad \
	./policy:FuzzCompileCondition \
	./internal/jsonscan:FuzzCanonical \
	./internal/jsonscan:FuzzCheckNames \
	./internal/resourceuri:FuzzNormalize \
	./upstream:FuzzIdentityValue \
	./policy:FuzzMatchPattern \
	./policy:FuzzDecodeArguments

## fuzz: run every fuzz target for FUZZTIME each (default 1m), one after another; fails if any failed
fuzz:
	@GO=$(GO) bash scripts/fuzz.sh $(FUZZTIME) $(FUZZMINIMIZETIME) $(FUZZ_TARGETS)

## fuzz-ci: every fuzz target for 15s (part of make test)
fuzz-ci:
	@$(MAKE) --no-print-directory fuzz FUZZTIME=15s FUZZMINIMIZETIME=2s

## conformance-report: run the official server suite (direct and through the gateway) and write conformance/report/
conformance-report: interop-tools conformance-tools
	GATEWAYSTACK_INTEROP_EVERYTHING_SERVER=$(CURDIR)/$(EVERYTHING_SERVER) \
	GATEWAYSTACK_CONFORMANCE_NODE_MODULES=$(CURDIR)/$(CONFORMANCE_NODE_MODULES) \
	GATEWAYSTACK_CONFORMANCE_REPORT_DIR=$(CURDIR)/conformance/report \
	$(GO) test -race -count=1 -timeout 10m -run '^TestOfficialServerSuite$$' -v ./conformance

## build: the binary in bin/
build:
	$(GO) build -o bin/gatewaystack ./cmd/gatewaystack

## demo: the one-command demo
demo:
	$(GO) run ./cmd/gatewaystack demo

## bench: the gateway's cost on the wire — direct vs bare proxy vs gateway, c=16 and c=64, 3 rounds (bench/run.sh, ~8 min; BENCH_DURATION=3s BENCH_ROUNDS=1 for a quick look)
bench: $(EVERYTHING_SERVER)
	bash bench/run.sh

## bench-steady: the gateway's heap, goroutines and RSS every 30s under steady load for STEADY_DURATION seconds (default 300)
bench-steady:
	bash bench/steady.sh

## bench-smoke: every in-process benchmark once, so a broken benchmark fails CI (timings are not checked)
bench-smoke:
	$(GO) test -count=1 -run '^$$' -bench . -benchtime 1x ./mcp ./auth ./policy ./limit ./audit ./loadgen

## bench-go: in-process benchmarks (hot-path pieces, a full tools/call, the load generator's client)
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem ./mcp ./auth ./policy ./limit ./audit ./loadgen

## soak: the fault soak test for SOAK_DURATION (default 3m; make test runs it for 8s)
SOAK_DURATION ?= 3m
soak: redis-tools
	GATEWAYSTACK_SOAK=$(SOAK_DURATION) GATEWAYSTACK_REDIS_SERVER=$(REDIS_SERVER) GATEWAYSTACK_REQUIRE_REDIS=1 \
	$(GO) test -count=1 -timeout 30m -run '^TestFaultSoak$$' -v ./mcp
