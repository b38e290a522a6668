# Weft's build. Every pinned tool (buf, protoc-gen-go, protoc-gen-go-grpc,
# yaegi, grpcurl) runs through `go tool`, at the version go.mod pins, so the
# targets work offline from the module cache. `make` alone lists the targets.

GO           ?= go
BIN          := bin
# Bounds one test binary; the whole suite takes a few minutes on 2 cores.
TEST_TIMEOUT ?= 10m
# Extra flags for go test, such as TESTFLAGS='-run TestFoundation -v'.
TESTFLAGS    ?=

.DEFAULT_GOAL := help
# How long `make fuzz` runs each fuzzer (make test runs them too).
FUZZTIME     ?= 10s
# Fuzz targets, as package:FuzzName.
FUZZ_TARGETS := ./agent/handler:FuzzDecodeJSON ./agent/channel/format:FuzzDecodeXML ./agent/channel/format:FuzzDecodeSOAP

.PHONY: help build run test fuzz proto generate check clean

help: ## List the targets
	@echo 'Usage: make TARGET'
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## Build bin/weft-controlplane, bin/weft-agent and bin/weftctl
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/weft-controlplane ./controlplane
	$(GO) build -o $(BIN)/weft-agent ./agent
	$(GO) build -o $(BIN)/weftctl ./ctl

run: build ## Start a control plane and an agent serving the hello example (Ctrl-C stops)
	@scripts/run.sh

test: ## Vet, then run every test with the race detector (MySQL too when it answers)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./...
	@$(MAKE) --no-print-directory fuzz

fuzz: ## Run each fuzzer for FUZZTIME (10s) from its committed seed corpus
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $(FUZZTIME) $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) $$pkg || exit 1; \
	done

proto: ## Format the .proto files and regenerate their Go code
	$(GO) tool buf format -w
	$(GO) tool buf generate

generate: ## Run go generate (the Yaegi symbol tables)
	$(GO) generate ./...

check: proto generate ## Regenerate, then gofmt, vet, buf lint, tidy, and fail on any diff
	@echo '--- gofmt'
	@out=$$(find . \( -name .git -o -name testdata -o -name .run \) -prune -o -name '*.go' -print | xargs gofmt -l); \
	if [ -n "$$out" ]; then echo "gofmt -l: these files need gofmt -w:"; echo "$$out"; exit 1; fi
	@echo '--- go vet'
	$(GO) vet ./...
	@echo '--- buf lint'
	$(GO) tool buf lint
	@echo '--- go.mod and go.sum are tidy'
	$(GO) mod tidy -diff
	@echo '--- generated code is committed and current'
	@if ! git diff --quiet; then \
		echo 'make check: the tree differs from the index after make proto generate (or has uncommitted edits):'; \
		git diff --stat; exit 1; fi
	@untracked=$$(git ls-files --others --exclude-standard '*.go' | xargs -r grep -l '^// Code generated .* DO NOT EDIT\.$$'); \
	if [ -n "$$untracked" ]; then \
		echo 'make check: generated files are not committed:'; echo "$$untracked"; exit 1; fi
	@echo 'make check: ok'

clean: ## Remove bin/ and the make run directory .run/
	rm -rf $(BIN) .run
