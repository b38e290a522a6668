# Weft's build. Every pinned tool (buf, protoc-gen-go, protoc-gen-go-grpc,
# yaegi, grpcurl) runs through `go tool`, at the version go.mod pins, so the
# targets work offline from the module cache. `make` alone lists the targets.

GO           ?= go
BIN          := bin
# Bounds one test binary: a bound, not a target (the end-to-end package
# takes some 5 minutes on a quiet 2-core machine, twice that beside a
# second suite).
TEST_TIMEOUT ?= 20m
# Extra flags for go test, such as TESTFLAGS='-run TestFoundation -v'.
TESTFLAGS    ?=

.DEFAULT_GOAL := help
# The fuzz targets, one package:FuzzName:executions a line. Each runs for
# its count of executions (FUZZ_EXECS when it names none); the counts make
# some 35 s for all on a quiet 2-core machine, longer on a loaded one. A
# count, not a duration, so that load cannot fail the run: a duration arms
# a deadline in Go's fuzzing coordinator, which before Go 1.27 can report
# it as a failure with no crashing input (golang/go#75804).
FUZZ_TARGETS := \
	./agent/handler:FuzzDecodeJSON:250000x \
	./agent/shared/format:FuzzDecodeXML:250000x \
	./agent/shared/format:FuzzDecodeSOAP:250000x \
	./proto/configfile:FuzzEscape:50000x
FUZZ_EXECS   ?= 250000x
# FUZZTIME, when set, replaces every target's count: a duration for a long
# local run (make fuzz FUZZTIME=10m), or another count (FUZZTIME=1000000x).
FUZZTIME     ?=
# The commit `make breaking` compares the .proto files with. By default
# the newest commit more than 4 hours older than HEAD: the commits of one
# working session land together and a session lasts at most 3 hours, so
# this checks them all at once, not only the last; HEAD~1 when there is
# none. Set it to compare with another, such as BREAKING_BASE=origin/main.
BREAKING_BASE ?=
# Where make install puts things: PREFIX/bin for the binaries, UNITDIR for
# the systemd units (their ExecStart names PREFIX/bin), SYSCONFDIR/default
# for the example environment files, which an existing file is never
# replaced by. DESTDIR is prepended to each, for packaging.
PREFIX       ?= /usr/local
UNITDIR      ?= /etc/systemd/system
SYSCONFDIR   ?= /etc
DESTDIR      ?=

.PHONY: help build run test fuzz proto generate check breaking clean install

help: ## List the targets
	@echo 'Usage: make TARGET'
	@echo
	@awk 'BEGIN { FS = ":.*## " } /^[a-z][a-z-]*:.*## / { printf "  %-10s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## Build bin/weft-controlplane, bin/weft-agent and bin/weftctl
	@mkdir -p $(BIN)
	$(GO) build -o $(BIN)/weft-controlplane ./controlplane
	$(GO) build -o $(BIN)/weft-agent ./agent
	$(GO) build -o $(BIN)/weftctl ./ctl

install: build ## Install the binaries, the systemd units and example config (DESTDIR, PREFIX, UNITDIR, SYSCONFDIR)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/default
	install -m 0755 $(BIN)/weft-controlplane $(BIN)/weft-agent $(BIN)/weftctl $(DESTDIR)$(PREFIX)/bin/
	for u in weft-controlplane weft-agent; do \
		sed 's|/usr/local/bin/|$(PREFIX)/bin/|g; s|/etc/default/|$(SYSCONFDIR)/default/|g' deploy/systemd/$$u.service > $(DESTDIR)$(UNITDIR)/$$u.service && \
		chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.service && \
		if [ -e $(DESTDIR)$(SYSCONFDIR)/default/$$u ]; then \
			echo "kept $(DESTDIR)$(SYSCONFDIR)/default/$$u; the example is $(DESTDIR)$(SYSCONFDIR)/default/$$u.example"; \
			install -m 0644 deploy/config/$$u.env $(DESTDIR)$(SYSCONFDIR)/default/$$u.example; \
		else \
			install -m 0644 deploy/config/$$u.env $(DESTDIR)$(SYSCONFDIR)/default/$$u; \
		fi || exit 1; \
	done
	@echo 'installed; then: systemctl daemon-reload && systemctl enable --now weft-controlplane (and weft-agent on the edge hosts)'

run: build ## Start a control plane and an agent serving the hello example (Ctrl-C stops)
	@scripts/run.sh

test: ## Vet, then run every test with the race detector (MySQL too when it answers)
	$(GO) vet ./...
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) $(TESTFLAGS) ./...
	@$(MAKE) --no-print-directory fuzz

fuzz: ## Run each fuzzer for its count of executions, or for FUZZTIME, from its seed corpus
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; rest=$${t#*:}; name=$${rest%%:*}; count=$${rest#*:}; \
		if [ "$$count" = "$$rest" ]; then count=$(FUZZ_EXECS); fi; \
		fuzztime='$(FUZZTIME)'; fuzztime=$${fuzztime:-$$count}; \
		echo "$(GO) test -run '^$$' -fuzz '^$$name\$$' -fuzztime $$fuzztime $$pkg"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime "$$fuzztime" $$pkg || exit 1; \
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

breaking: ## Fail on a .proto change that breaks compatibility with BREAKING_BASE (buf breaking)
	@base='$(BREAKING_BASE)'; \
	if [ -z "$$base" ]; then \
		head=$$(git log -1 --format=%ct HEAD) || exit 1; \
		base=$$(git rev-list -1 --before="@$$((head - 4 * 3600))" HEAD); \
	fi; \
	if [ -z "$$base" ]; then base=$$(git rev-parse -q --verify 'HEAD~1^{commit}'); fi; \
	if [ -z "$$base" ] && [ "$$(git rev-parse --is-shallow-repository)" = true ]; then \
		echo 'make breaking: skipped: this shallow clone holds no earlier commit (git fetch --unshallow)'; exit 0; \
	elif [ -z "$$base" ]; then \
		echo 'make breaking: skipped: HEAD is the first commit'; exit 0; \
	fi; \
	base=$$(git rev-parse -q --verify "$$base^{commit}") || { echo "make breaking: BREAKING_BASE=$(BREAKING_BASE) is not a commit" >&2; exit 1; }; \
	echo "make breaking: the .proto files against $$(git log -1 --format='%h (%ci) %s' $$base)"; \
	echo "$(GO) tool buf breaking --against '.git#ref=$$base'"; \
	$(GO) tool buf breaking --against ".git#ref=$$base" && echo 'make breaking: ok'

clean: ## Remove bin/ and the make run directory .run/
	rm -rf $(BIN) .run
