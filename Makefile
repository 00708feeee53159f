# criu-ns-runtime. `make demo` and `make test` are the two commands a newcomer runs.
# Go from PATH, else where the Go tarball installs it.
GO ?= $(shell command -v go 2>/dev/null || echo /usr/local/go/bin/go)
BIN := bin/criu-ns-runtime
PREFIX ?= /usr/local
GIT_COMMIT := $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X main.gitCommit=$(GIT_COMMIT)
UNIT_PKGS := ./bundle/... ./specgen/... ./shim/... ./internal/... ./criuns/... ./cmd/...

.PHONY: all deps build install lint unit integration test e2e bench bench-smoke demo clean

all: build

# deps installs a CRIU this kernel can use (builds 4.1.1 if needed) and what the
# tests need (ip, nsenter, iptables); idempotent.
deps:
	scripts/install-build-deps.sh
	scripts/install-criu.sh
	scripts/install-test-deps.sh

# seccomp: managers' containers come with seccomp profiles.
build:
	CGO_ENABLED=1 $(GO) build -tags seccomp -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/criu-ns-runtime

install: build
	install -D -m 0755 $(BIN) $(PREFIX)/sbin/criu-ns-runtime
	ln -sf criu-ns-runtime $(PREFIX)/sbin/criu-ns

lint:
	@fmt=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
		if [ -n "$$fmt" ]; then echo "gofmt needed: $$fmt"; exit 1; fi
	$(GO) vet ./...

unit:
	$(GO) test -count=1 $(UNIT_PKGS)

integration: build
	CRIU_NS_RUNTIME=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 30m -v ./tests/

# e2e drives the runtime through podman, containerd and runtime-tools.
e2e: deps build
	scripts/install-e2e-deps.sh
	E2E_RUNTIME=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 20m -v ./tests/e2e/

# bench compares the runtime with bare CRIU; it asserts no timings.
bench: deps build
	$(GO) run ./bench -runtime $(CURDIR)/$(BIN) -out bench/results

# bench-smoke runs a tiny benchmark so it cannot rot; results go to a temp dir.
bench-smoke: build
	$(GO) run ./bench -smoke -runtime $(CURDIR)/$(BIN)

test: deps build lint unit integration e2e bench-smoke

demo: deps build
	scripts/demo.sh $(CURDIR)/$(BIN)

clean:
	rm -rf bin
