# criu-ns-runtime. `make demo` and `make test` are the two commands a newcomer runs.
# Go from PATH, else where the Go tarball installs it.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/criu-ns-runtime
# The same runtime with named crash points compiled in, for tests/fault_test.go.
FAULT_BIN := bin/criu-ns-runtime-faultinject
PREFIX ?= /usr/local
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X main.gitCommit=$(GIT_COMMIT)
UNIT_PKGS := ./bundle/... ./specgen/... ./shim/... ./internal/... ./criuns/... ./cmd/...

.PHONY: all deps test-deps build build-faultinject install lint unit integration test e2e test-vm bench bench-smoke demo clean

all: build

# deps installs a CRIU this kernel can use (builds 4.1.1 if needed), CRIU's
# RPC clients (pycriu, libcriu) the swrk tests drive, and what the tests
# need (ip, nsenter, iptables); idempotent.
deps:
	scripts/install-build-deps.sh
	scripts/install-criu.sh
	scripts/install-rpc-clients.sh
	scripts/install-test-deps.sh

# test-deps installs what the integration tests run besides CRIU (python3
# for CRIU's own criu-ns suite, tmux, bash).
test-deps:
	scripts/install-test-deps.sh

# seccomp: managers' containers come with seccomp profiles.
# urfave_cli_no_docs: leaves out urfave/cli's man page and markdown
# generators; their markdown package's init cost every start-up of the
# binary (three per restore) about 0.5 ms and 0.8 MiB.
TAGS := seccomp,urfave_cli_no_docs
build:
	CGO_ENABLED=1 $(GO) build -tags $(TAGS) -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/criu-ns-runtime

# The fault-injection suite kills this build at named points (internal/crashpoint).
build-faultinject:
	CGO_ENABLED=1 $(GO) build -tags $(TAGS),faultinject -ldflags "$(LDFLAGS)" -o $(FAULT_BIN) ./cmd/criu-ns-runtime

install: build
	install -D -m 0755 $(BIN) $(PREFIX)/sbin/criu-ns-runtime
	ln -sf criu-ns-runtime $(PREFIX)/sbin/criu-ns

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -count=1 $(UNIT_PKGS)

integration: build build-faultinject test-deps
	CRIU_NS_RUNTIME=$(CURDIR)/$(BIN) CRIU_NS_RUNTIME_FAULTINJECT=$(CURDIR)/$(FAULT_BIN) \
		$(GO) test -count=1 -timeout 30m -v ./tests/

# e2e drives the runtime through podman, containerd 1.6 (ctr), containerd
# 2.x's CRI (crictl) and runtime-tools. A tool still missing once the
# installers ran fails the tests; E2E_ALLOW_SKIP=1 skips them instead, and
# the run's last line says so.
E2E_SKIP_NOTE := $(CURDIR)/bin/e2e-skip-note
e2e: deps build
	scripts/install-e2e-deps.sh || [ "$$E2E_ALLOW_SKIP" = 1 ]
	@rm -f $(E2E_SKIP_NOTE)
	E2E_RUNTIME=$(CURDIR)/$(BIN) E2E_SKIP_NOTE=$(E2E_SKIP_NOTE) $(GO) test -count=1 -timeout 40m -v ./tests/e2e/; \
		rc=$$?; if [ -f $(E2E_SKIP_NOTE) ]; then cat $(E2E_SKIP_NOTE); fi; exit $$rc

# test-vm runs the integration suite again in a QEMU guest (TCG) with Debian
# 12's own kernel 6.1 (cgroup v2, soft-dirty), and the e2e tests that need
# that kernel (podman's pre-checkpoints): see tests/vm.
test-vm: deps build build-faultinject
	scripts/install-vm-deps.sh
	scripts/install-e2e-deps.sh
	CRIU_NS_RUNTIME=$(CURDIR)/$(BIN) CRIU_NS_RUNTIME_FAULTINJECT=$(CURDIR)/$(FAULT_BIN) $(GO) test -count=1 -timeout 60m -v ./tests/vm/

# bench compares the runtime with bare CRIU and with its peers (CRIU's
# Python criu-ns; runc 1.1.5 bare, under podman and under containerd 2.3.7's
# CRI: a missing one fails it, naming the script that installs it); it
# asserts no timings.
bench: deps build
	$(GO) run ./bench -runtime $(CURDIR)/$(BIN) -out bench/results

# bench-smoke runs a tiny benchmark so it cannot rot; results go to a temp dir.
# Its peers' rows (CRIU's Python criu-ns, runc 1.1.5, podman, CRI) run if the peers are
# installed and are left out, with a note, if not; under `make test`, which
# installs them first (deps, e2e), a missing peer fails it.
BENCH_SMOKE_PEERS ?= auto
bench-smoke: build
	$(GO) run ./bench -smoke -peers $(BENCH_SMOKE_PEERS) -runtime $(CURDIR)/$(BIN)

# When E2E_ALLOW_SKIP=1 made the e2e tests skip, the last line says so.
test: BENCH_SMOKE_PEERS = require
test: deps test-deps build lint unit integration e2e bench-smoke test-vm
	@if [ -f $(E2E_SKIP_NOTE) ]; then cat $(E2E_SKIP_NOTE); fi

demo: deps build
	scripts/demo.sh $(CURDIR)/$(BIN)

clean:
	rm -rf bin
