# Everyday commands. Each target is one or two go commands, as CI runs them (.ci/run); nothing
# needs installing beyond Go (and, for the tests, what the README lists: gcc, curl, jq, Redis).

STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME ?= 20s

.PHONY: help test e2e lint fuzz bench generate deploy

help: ## list the targets
	@grep -E '^[a-z0-9]+:.*## ' $(MAKEFILE_LIST) | sed -e 's/:.*## /\t/'

test: ## the whole suite with the race detector (the README's test command)
	go test -race ./...

e2e: ## the end-to-end tests alone: the real binary as processes (about two minutes)
	go test -race -count=1 ./e2e/

lint: ## gofmt, go mod tidy, go vet and staticcheck, failing on any finding
	@unformatted=$$(gofmt -l .); if [ -n "$$unformatted" ]; then echo "not gofmt-ed:"; echo "$$unformatted"; exit 1; fi
	go mod tidy -diff
	go vet ./...
	go run $(STATICCHECK) ./...

fuzz: ## fuzz the token endpoint and the two signers briefly (FUZZTIME each; the second needs libssl-dev)
	go test -run '^$$' -fuzz '^FuzzTokenRequest$$' -fuzztime $(FUZZTIME) ./server/
	go test -tags openssl -run '^$$' -fuzz '^FuzzSignersAgree$$' -fuzztime $(FUZZTIME) ./keys/

bench: ## the load benchmark with its defaults (go run ./bench -h lists its flags); wants an idle machine
	go run ./bench

generate: ## regenerate docs/configuration.md from the config package
	go generate ./config

deploy: ## the deploy/ module's tests: the Helm chart rendered and checked, promtool on the alert rules
	cd deploy && go test ./...
