# make test: installs missing test servers, then vet, the race-enabled test
# suite and a short fixed run of every fuzz target.
GO        ?= go
FUZZTIME  ?= 10s
BENCHTIME ?= 1s
# package:FuzzTarget pairs run by `make fuzz`, each for FUZZTIME.
FUZZ      := .:FuzzOpen .:FuzzWindowBinary ./checkpoint:FuzzReader ./checkpoint:FuzzParseLocation ./checkpoint:FuzzParsePointer ./checkpoint:FuzzResolveChain ./stores/redis:FuzzParseURL ./stores/all:FuzzNoSecrets ./config:FuzzParse ./internal/ttlval:FuzzDecode

.PHONY: test deps vet race fuzz bench demo generate

test: deps vet race fuzz

deps:
	./scripts/install-deps.sh

vet:
	$(GO) vet ./...

race:
	$(GO) test -race -timeout 15m ./...

fuzz:
	@set -e; for f in $(FUZZ); do \
		pkg=$${f%%:*}; target=$${f##*:}; \
		echo "fuzz $$pkg $$target ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$target\$$" -fuzztime $(FUZZTIME) $$pkg; \
	done

bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

demo:
	$(GO) run ./cmd/strata demo

generate:
	$(GO) generate ./...
