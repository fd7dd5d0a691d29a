# gok8s: a Go service skeleton for Kubernetes. `make help` lists the targets.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

GO ?= go
# Each go.mod's `toolchain` line (go1.26.10) is the oldest Go that builds, tests and scans this
# project: auto makes an older installed go fetch that toolchain through GOPROXY, as a module,
# and run it (a newer one runs as it is). Go's own default on many machines is local, which
# ignores the line: `make GOTOOLCHAIN=local ...` does that here too.
GOTOOLCHAIN ?= auto
export GOTOOLCHAIN
# The app's name: binary, image, Kubernetes objects, kind cluster. `make rename` changes it.
APP_NAME ?= gok8s
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
IMG ?= $(APP_NAME):dev
APP_PORT ?= 8080
TEST_PARALLEL ?= 8
# go test's own limit per test binary (its default, 10m, killed e2e and tools/ on a loaded machine).
TEST_TIMEOUT ?= 30m
# Verbose test output without the RUN/PAUSE noise and the passing subtests:
# the log shows each test that ran, skipped or failed, and what it measured.
TEST_LOG = grep -vE '^(=== (RUN|PAUSE|CONT|NAME)|    +--- PASS)'
# An execution count, not a duration: Go 1.26's fuzzer may fail a run at the end of a
# duration with "context deadline exceeded" and no finding (go.dev/issue/75804).
FUZZTIME ?= 50000x
SOAK_DURATION ?= 10s
GOLANGCI_LINT ?= $(GO) tool -modfile=$(CURDIR)/tools/go.mod golangci-lint
# buf compiles api/'s .proto files (no protoc needed) and runs the pinned protoc-gen-go and
# protoc-gen-go-grpc (tools/buf/go.mod; api/buf.gen.yaml names them).
BUF ?= $(GO) tool -modfile=$(CURDIR)/tools/buf/go.mod buf
# govulncheck reads its database from -db only; GOVULNDB=file:///abs/dir names an offline copy,
# empty means govulncheck's default, the Go team's online database.
GOVULNCHECK ?= $(GO) tool -modfile=$(CURDIR)/tools/govulncheck/go.mod govulncheck
GOVULNDB ?=
VULNCHECK = $(GOVULNCHECK) $(if $(GOVULNDB),-db $(GOVULNDB))
# The pinned tools, as modfile:name, whose built binaries make vuln scans.
VULN_TOOLS = tools/go.mod:golangci-lint tools/go.mod:kind tools/actionlint/go.mod:actionlint \
	tools/govulncheck/go.mod:govulncheck tools/cyclonedx-gomod/go.mod:cyclonedx-gomod \
	tools/buf/go.mod:buf tools/buf/go.mod:protoc-gen-go tools/buf/go.mod:protoc-gen-go-grpc \
	tools/kube-score/go.mod:kube-score
CYCLONEDX_GOMOD ?= $(GO) tool -modfile=$(CURDIR)/tools/cyclonedx-gomod/go.mod cyclonedx-gomod
SBOM ?= dist/sbom.cdx.json
BENCH_COUNT ?= 6
# The Go modules of the repository: the service's and the ones beside it.
MODULES = . e2e k8s k8s/rules bench tools
BENCH_OUT ?= bench.txt
COMPARE_COUNT ?= 5
TRACING_ROUNDS ?= 8

# Base and backend images: the official ones unless overridden (see .ci/run for stand-ins).
GO_IMAGE ?= golang:1.26
RUNTIME_IMAGE ?= gcr.io/distroless/static-debian12:nonroot
POSTGRES_IMAGE ?= postgres:17-alpine
MEMCACHED_IMAGE ?= memcached:1.6-alpine
# Prometheus in the kind cluster, and the promtool that checks the rules (make test).
PROMETHEUS_IMAGE ?= prom/prometheus:v3.16.0
JAEGER_IMAGE ?= jaegertracing/jaeger:2.12.0
# Jaeger's UI and query API on the host, for make run.
JAEGER_PORT ?= 16686
# The image build downloads modules through the same proxy as the host.
GOPROXY ?= $(shell $(GO) env GOPROXY)
GOSUMDB ?= $(shell $(GO) env GOSUMDB)
KIND ?= $(GO) tool -modfile=tools/go.mod kind
KIND_CLUSTER ?= $(APP_NAME)
KIND_IMAGE ?=
KUBECTL ?= kubectl
COMPOSE ?= $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)
export GO_IMAGE RUNTIME_IMAGE POSTGRES_IMAGE MEMCACHED_IMAGE PROMETHEUS_IMAGE JAEGER_IMAGE JAEGER_PORT GOPROXY GOSUMDB VERSION APP_PORT
export APP_IMAGE = $(IMG)
export IMG KIND KIND_CLUSTER KIND_IMAGE KUBECTL GO

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m [VAR=value]\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: run
run: ## Build the image, start it with Postgres, memcached and Jaeger (compose), wait for /readyz.
	$(COMPOSE) up -d --build
	@for i in $$(seq 1 120); do \
		curl -fsS -o /dev/null http://localhost:$(APP_PORT)/readyz && break; \
		[ $$i -lt 120 ] || { echo "not ready after 120 s"; $(COMPOSE) ps; $(COMPOSE) logs --tail=50 app; exit 1; }; \
		sleep 1; done
	@echo "ready: http://localhost:$(APP_PORT)/api/links  probes: /livez /readyz?verbose  logs: $(COMPOSE) logs -f app"
	@echo "traces: http://localhost:$(JAEGER_PORT)/search?service=$(APP_NAME) (Jaeger)  API: http://localhost:$(JAEGER_PORT)/api/traces?service=$(APP_NAME)"

.PHONY: down
down: ## Stop the compose stack and remove its containers and volumes.
	$(COMPOSE) down --volumes --remove-orphans

.PHONY: dev
dev: ## Run the app from source against DATABASE_URL and MEMCACHED_SERVERS.
	$(GO) run ./app

.PHONY: generate
generate: ## Generate api/'s Go code (the gRPC API) from its .proto files with the pinned buf and plugins.
	cd api && $(BUF) generate

.PHONY: generate-check
generate-check: ## Regenerate api/ into a temporary directory; fail if any committed generated file differs.
	@tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	(cd api && $(BUF) generate -o "$$tmp") && \
	diff -r -x '*.proto' -x '*.yaml' -x doc.go -x '*_test.go' api "$$tmp" && echo "generate-check: api/ is up to date" || \
	{ echo "generate-check: api/ differs from what make generate writes: run make generate and commit"; exit 1; }

.PHONY: test
test: ## Run go vet, then test-go, test-e2e, test-k8s, test-rules, test-tools and test-bench side by side, each log in one piece.
	$(GO) vet ./...
	cd e2e && $(GO) vet ./... && $(GO) vet -tags soak ./...
	cd k8s && $(GO) vet ./... && $(GO) vet -tags kind ./...
	cd k8s/rules && $(GO) vet ./...
	$(MAKE) --no-print-directory -j4 --output-sync=target test-go test-e2e test-k8s test-rules test-tools test-bench

.PHONY: test-go
test-go: ## Unit tests of the service's module, with -race.
	$(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./... | $(TEST_LOG)

.PHONY: test-e2e
test-e2e: ## The e2e module: testcontainers suites against the real binary, with -race (needs Docker).
	cd e2e && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -parallel $(TEST_PARALLEL) -v ./... | $(TEST_LOG)

.PHONY: test-k8s
test-k8s: ## Manifest tests: kustomize, a real kube-apiserver (KUBEBUILDER_ASSETS), policies, kube-score.
	cd k8s && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./... | $(TEST_LOG)

.PHONY: test-rules
test-rules: ## Alerts and dashboard: promtool check and test rules (PROMETHEUS_IMAGE, Docker), PromQL against the real app.
	cd k8s/rules && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./... | $(TEST_LOG)

.PHONY: test-tools
test-tools: ## Tests of tools/: make rename on a copy of the repository, make sbom and what it lists.
	cd tools && $(GO) test -race -count=1 -timeout $(TEST_TIMEOUT) -v ./... | $(TEST_LOG)

.PHONY: test-bench
test-bench: ## Run every benchmark of every module once (-benchtime 1x), so that a broken one fails the build.
	@st=0; for m in $(MODULES); do \
		pkgs=$$(cd $$m && $(GO) list -f '{{.ImportPath}} {{.Dir}}' ./... | \
			while read -r pkg dir; do if grep -qs '^func Benchmark' "$$dir"/*_test.go; then echo "$$pkg"; fi; done); \
		[ -z "$$pkgs" ] || (set -x; cd $$m && $(GO) test -run '^$$' -bench . -benchtime 1x -benchmem -count=1 -timeout $(TEST_TIMEOUT) $$pkgs) || st=1; \
	done; exit $$st

.PHONY: lint
lint: ## Run golangci-lint (pinned in tools/, settings in .golangci.yml), actionlint on the workflows, buf lint and format on api/.
	$(GOLANGCI_LINT) run ./...
	cd e2e && $(GOLANGCI_LINT) run --config ../.golangci.yml ./...
	cd k8s && $(GOLANGCI_LINT) run --config ../.golangci.yml ./...
	cd k8s/rules && $(GOLANGCI_LINT) run --config ../../.golangci.yml ./...
	cd bench && $(GOLANGCI_LINT) run --config ../.golangci.yml ./...
	cd tools && $(GOLANGCI_LINT) run --config ../.golangci.yml ./...
	$(GO) tool -modfile=tools/actionlint/go.mod actionlint
	cd api && $(BUF) lint && $(BUF) format --diff --exit-code

.PHONY: soak
soak: ## Load the real app for SOAK_DURATION (10s) with API and probe requests; check it holds up.
	SOAK_DURATION=$(SOAK_DURATION) $(GO) -C e2e test -tags soak -run '^TestSoak$$' -count=1 -v . | $(TEST_LOG)

.PHONY: fuzz
fuzz: ## Run each fuzz target for FUZZTIME (50000x) on top of its corpus in testdata/.
	$(GO) test -run '^$$' -fuzz '^FuzzProbes$$' -fuzztime $(FUZZTIME) ./middleware
	$(GO) test -run '^$$' -fuzz '^FuzzCreate$$' -fuzztime $(FUZZTIME) ./app/internal/links
	$(GO) test -run '^$$' -fuzz '^FuzzConfig$$' -fuzztime $(FUZZTIME) ./app

.PHONY: bench
bench: ## Run the benchmarks; print the pass-through overhead, cached /readyz against /livez, gRPC Check and Watch.
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./probes ./middleware ./grpchealth | tee $(BENCH_OUT)
	@med() { grep "^$$1" $(BENCH_OUT) | awk '{print $$3}' | sort -n | \
		awk '{a[NR]=$$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }; \
	metric() { grep "^$$1" $(BENCH_OUT) | awk -v u="$$2" '{for (i = 4; i <= NF; i++) if ($$i == u) print $$(i-1)}' | sort -n | \
		awk '{a[NR]=$$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }; \
	awk -v t="$$(metric BenchmarkCheck ns/check-grpc-go)" -v o="$$(metric BenchmarkCheck ns/check-grpchealth)" -v r="$$(metric BenchmarkCheck ratio)" \
		'BEGIN {printf "gRPC Check over loopback: grpchealth %.0f ns vs grpc-go health.Server %.0f ns: ratio %.3fx (median of $(BENCH_COUNT) paired runs)\n", o, t, r}'; \
	awk -v m="$$(metric BenchmarkWatchFanout ms/transition)" 'BEGIN {printf "a transition reaches 1,000 open Watch streams in %.1f ms (median of $(BENCH_COUNT))\n", m}'; \
	bare=$$(med 'BenchmarkPassThrough/bare'); probes=$$(med 'BenchmarkPassThrough/probes'); \
	awk -v b="$$bare" -v p="$$probes" 'BEGIN {printf "pass-through: %.2f ns/op vs bare %.2f ns/op: +%.2f ns, ratio %.2fx (medians of $(BENCH_COUNT))\n", p, b, p - b, p / b}'; \
	livez=$$(med 'BenchmarkLivez/bare'); readyz=$$(med 'BenchmarkReadyzCached/bare'); observed=$$(med 'BenchmarkReadyzCached/observer'); \
	awk -v l="$$livez" -v r="$$readyz" -v o="$$observed" 'BEGIN {printf "cached /readyz: %.2f ns/op vs /livez %.2f ns/op: ratio %.2fx; with an observer %.2f ns/op: %+.2f ns\n", r, l, r / l, o, o - r}'

.PHONY: bench-tracing
bench-tracing: ## Benchmark the API chain with tracing off, sampling nothing, always on; write docs/benchmarks.md's tracing section.
	mkdir -p bin docs
	$(GO) test -c -o bin/app-bench.test ./app
	cd app && for i in $$(seq 1 $(TRACING_ROUNDS)); do \
		../bin/app-bench.test -test.run '^$$' -test.bench '^Benchmark(Chain|RedirectCacheHit|ProbeThroughChain)$$' -test.benchmem | grep '^Benchmark'; \
	done | tee ../docs/benchmarks-tracing.txt
	cd bench && $(GO) run ./cmd/compare -tracing ../docs/benchmarks-tracing.txt -out ../docs/benchmarks.md

.PHONY: bench-compare
bench-compare: ## Compare the probes with other Go health-check libraries; write docs/benchmarks.md.
	mkdir -p docs
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count $(COMPARE_COUNT) -timeout 60m . | tee ../docs/benchmarks.txt
	cd bench && $(GO) run ./cmd/compare -bench ../docs/benchmarks.txt -out ../docs/benchmarks.md

##@ Build

.PHONY: build
build: ## Build the app binary into bin/app.
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags="-s -w -X main.version=$(VERSION)" -o bin/app ./app

.PHONY: docker-build
docker-build: ## Build the app image $(IMG).
	docker build -t $(IMG) --build-arg GO_IMAGE=$(GO_IMAGE) --build-arg RUNTIME_IMAGE=$(RUNTIME_IMAGE) \
		--build-arg GOPROXY=$(GOPROXY) --build-arg GOSUMDB=$(GOSUMDB) --build-arg VERSION=$(VERSION) \
		--build-arg GO_TOOLCHAIN=$(GOTOOLCHAIN) .

##@ Supply chain

.PHONY: vuln
vuln: build ## govulncheck every module, bin/app and the pinned tools; GOVULNDB=file:///dir: an offline DB.
	$(VULNCHECK) -test ./...
	cd e2e && $(VULNCHECK) -test ./...
	cd k8s && $(VULNCHECK) -test ./...
	cd k8s/rules && $(VULNCHECK) -test ./...
	cd bench && $(VULNCHECK) ./...
	$(VULNCHECK) -mode binary bin/app
	@for t in $(VULN_TOOLS); do \
		bin=$$($(GO) tool -modfile=$${t%%:*} -n $${t##*:}); \
		echo "$(VULNCHECK) -mode binary $$bin  # $${t##*:}"; $(VULNCHECK) -mode binary "$$bin"; done

.PHONY: vuln-image
vuln-image: docker-build ## govulncheck the image's binary (copied to bin/app-image); print the Go that built it.
	mkdir -p bin
	id=$$(docker create $(IMG)); st=0; docker cp -q $$id:/app bin/app-image || st=$$?; docker rm $$id >/dev/null; exit $$st
	$(GO) version bin/app-image
	$(VULNCHECK) -mode binary bin/app-image

.PHONY: sbom
sbom: build ## Write the CycloneDX SBOM of bin/app (its modules and Go's standard library) to $(SBOM).
	mkdir -p $(dir $(SBOM))
	$(CYCLONEDX_GOMOD) bin -json -std -version $(VERSION) -output $(SBOM) bin/app

##@ Deployment

.PHONY: kind-up
kind-up: docker-build ## Create the kind cluster if absent, load the images, apply k8s/overlays/kind, wait.
	k8s/kind.sh up

.PHONY: kind-demo
kind-demo: ## Stop PostgreSQL in the cluster and show the app pods leave and rejoin the Service.
	k8s/kind.sh demo

.PHONY: kind-scenarios
kind-scenarios: ## Under load, roll, drain, scale and break the kind-up cluster: 0 failed requests (k8s/disruption).
	k8s/kind.sh scenarios

.PHONY: kind-e2e
kind-e2e: docker-build ## On a new 3-node kind cluster: kind-up, kind-scenarios, kind-demo, kind-down; fail on any step.
	k8s/kind.sh e2e

.PHONY: kind-down
kind-down: ## Delete the kind cluster.
	k8s/kind.sh down

##@ Fork

.PHONY: rename
rename: ## Make the fork yours: make rename MODULE=example.com/acme/orders [NAME=orders].
	@test -n "$(MODULE)" || { echo "usage: make rename MODULE=example.com/acme/orders [NAME=orders]"; exit 2; }
	cd tools && $(GO) run ./rename -root .. -module "$(MODULE)" -name "$(NAME)"
