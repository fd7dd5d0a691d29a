# gok8s: a Go service skeleton for Kubernetes. `make help` lists the targets.
SHELL = /usr/bin/env bash -o pipefail
.SHELLFLAGS = -ec

GO ?= go
BENCH_COUNT ?= 6
BENCH_OUT ?= bench.txt

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage: make \033[36m<target>\033[0m [VAR=value]\n"} \
		/^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } \
		/^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) }' $(MAKEFILE_LIST)

##@ Development

.PHONY: test
test: ## Run go vet and every test with the race detector.
	$(GO) vet ./...
	$(GO) test -race -count=1 ./...

.PHONY: bench
bench: ## Run the benchmarks and print the middleware's pass-through overhead.
	$(GO) test -run '^$$' -bench . -benchmem -count $(BENCH_COUNT) ./probes ./middleware | tee $(BENCH_OUT)
	@med() { grep "^$$1" $(BENCH_OUT) | awk '{print $$3}' | sort -n | \
		awk '{a[NR]=$$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }; \
	bare=$$(med 'BenchmarkPassThrough/bare'); probes=$$(med 'BenchmarkPassThrough/probes'); \
	awk -v b="$$bare" -v p="$$probes" 'BEGIN {printf "pass-through: %.2f ns/op vs bare %.2f ns/op: +%.2f ns, ratio %.2fx (medians of $(BENCH_COUNT))\n", p, b, p - b, p / b}'
