# The README's two commands: `make run` and `make test`.
GO ?= go

.PHONY: run test build bench fmt

## run: Docket on its embedded default (SQLite and a local key under ./docket-data), seeded with demo data
run: build
	./bin/docket demo
	./bin/docket serve

## test: every test, as CI runs them (.ci/run calls this)
test:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	@# generated code stays generated: regenerating must change nothing
	@tmp=$$(mktemp -d) && cp -r graph $$tmp/ && $(GO) generate ./graph && diff -r $$tmp/graph graph && rm -rf $$tmp
	@# what the tests run against: local-kms (KMS), the reference OpenTimestamps client, Chromium (portal),
	@# poppler (binder PDFs), curl and jq (the README's walk-through)
	GO=$(GO) ./scripts/install-local-kms.sh
	./scripts/install-ots-reference.sh
	./scripts/install-chromium.sh
	./scripts/install-poppler.sh
	./scripts/install-walkthrough-tools.sh
	$(GO) test -count=1 ./...
	$(GO) test -count=1 -race -short ./ledger/... ./domain/...

## build: the docket binary in ./bin
build:
	$(GO) build -o bin/docket ./cmd/docket
	$(GO) build -o bin/docket-hook ./cmd/docket-hook

## bench: the ledger benchmarks and the bench command with the budget's shapes
bench: build
	$(GO) test -run XXX -bench . -benchtime 3s ./ledger/sqlite
	rm -rf /tmp/docket-bench && ./bin/docket bench append --data /tmp/docket-bench --events 300000 --batch 1000 --concurrency 2
	rm -rf /tmp/docket-bench && ./bin/docket bench append --data /tmp/docket-bench --events 100000 --batch 1 --concurrency 64
	./bin/docket verify ledger --data /tmp/docket-bench
