# tfserving: TensorFlow Serving on Kubernetes with one `pulumi up`.
#   make dev                  minikube + local state + pulumi up + smoke test (the laptop path)
#   make test                 lint, type check, all tests (what CI runs)
#   make preview|up|destroy|render|smoke STACK=dev|eks|gateway
#   make loadtest STACK=dev DURATION=60s   Locust, headless, step load; prints the summary
#   make autoscale-demo STACK=dev          load + watch the HPA -> build/<stack>/autoscale/*.csv,png
#   make bench                             gateway throughput, latency and CPU per request
#   make proto                             regenerate the gateway's TF Serving protobuf code

STACK ?= dev
PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin
OUT ?= build/$(STACK)
DURATION ?= 60s
MINIKUBE_PROFILE ?= minikube
# Local file backend inside the repo: no Pulumi account needed. The passphrase only protects
# secrets in this local dev state; it is documented in the README and is not a real secret.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
export PULUMI_CONFIG_PASSPHRASE ?= tfserving-dev-only
export PULUMI_SKIP_UPDATE_CHECK := true

.PHONY: help dev test lint typecheck pytest render preview up destroy smoke stack tools minikube \
	loadtest autoscale-demo bench proto clean

help:
	@sed -n 's/^#   //p' Makefile

$(BIN)/.installed: requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

test: lint typecheck pytest zizmor

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(BIN)/.installed
	$(BIN)/mypy .

pytest: $(BIN)/.installed
	$(BIN)/pytest

# Workflow security linter over .github/ (workflows and dependabot.yml), offline: no findings
# allowed; a justified exception is an inline `# zizmor: ignore[rule] reason` or goes in
# .github/zizmor.yml with a comment.
.PHONY: zizmor
zizmor: $(BIN)/.installed
	$(BIN)/zizmor --offline --strict-collection --config .github/zizmor.yml .github

render: $(BIN)/.installed
	$(BIN)/python -m tools.render --stack $(STACK) --out $(OUT)

# --- real deployments: need the pulumi CLI (and minikube/kubectl or AWS credentials) --------

tools:
	@command -v pulumi >/dev/null || { echo "pulumi CLI not found: install it from https://www.pulumi.com/docs/install/"; exit 1; }
	@command -v kubectl >/dev/null || { echo "kubectl not found: install it from https://kubernetes.io/docs/tasks/tools/"; exit 1; }
	@if [ "$(STACK)" != "eks" ]; then command -v minikube >/dev/null || { echo "minikube not found: install it from https://minikube.sigs.k8s.io/docs/start/"; exit 1; }; fi
	@if [ "$(STACK)" = "eks" ]; then command -v aws >/dev/null || { echo "AWS CLI not found (kubeconfig uses 'aws eks get-token'): install AWS CLI v2"; exit 1; }; fi
	@if [ "$(STACK)" = "eks" ]; then aws sts get-caller-identity >/dev/null 2>&1 || { echo "no AWS credentials: aws configure / aws sso login / AWS_PROFILE"; exit 1; }; fi

minikube: tools
	@minikube -p $(MINIKUBE_PROFILE) status >/dev/null 2>&1 || minikube -p $(MINIKUBE_PROFILE) start --cpus=2 --memory=4096
	minikube -p $(MINIKUBE_PROFILE) addons enable metrics-server

stack: tools $(BIN)/.installed
	@mkdir -p .pulumi-state
	pulumi stack select $(STACK) 2>/dev/null || pulumi stack init $(STACK)

# The policy pack's own virtualenv (PulumiPolicy.yaml names it), created as the workflows do.
policy/venv/.installed: policy/requirements.txt
	test -x policy/venv/bin/python || $(PYTHON) -m venv policy/venv
	policy/venv/bin/pip install --quiet --disable-pip-version-check -r policy/requirements.txt
	touch $@

preview: stack policy/venv/.installed
	pulumi preview --stack $(STACK) --diff --policy-pack policy

# On minikube, images (model source `image`, the gateway) are built into minikube's own Docker
# daemon, so the node has them without a registry. On eks they are built here and pushed to ECR.
up: stack policy/venv/.installed
	@if [ "$(STACK)" = "eks" ]; then docker buildx version >/dev/null 2>&1 || { echo "docker buildx not found: images are built here and pushed to ECR"; exit 1; }; fi
	$(if $(filter eks,$(STACK)),,eval $$(minikube -p $(MINIKUBE_PROFILE) docker-env) &&) pulumi up --stack $(STACK) --yes --policy-pack policy

destroy: stack
	pulumi destroy --stack $(STACK) --yes

# Manifest scan of a render (build/<stack>/kubernetes.yaml) with checkov, offline, in a venv of
# its own (checkov pins packaging<24, which conflicts with pulumi's). Slow: not part of `make test`.
# Accepted findings are skipped here, each with its reason; policy/README.md says more.
SCAN_VENV := build/checkov-venv
# CKV_K8S_40 (uid >= 10000): the pods run as uid 1000, never root: KServe's uid for the stock
#   TF Serving image, whose files it can read, and the gateway image's user; no privilege
#   escalation, all capabilities dropped, Pod Security restricted.
SCAN_SKIP := CKV_K8S_40
# CKV_K8S_43 (image by digest) and CKV_K8S_15 (imagePullPolicy Always), minikube stacks only:
#   model and gateway images are local tags built into the node's Docker daemon, which no
#   registry serves; the stock image is pinned by version tag. eks runs digest-pinned ECR
#   images and is held to both.
SCAN_SKIP_MINIKUBE := CKV_K8S_43,CKV_K8S_15

$(SCAN_VENV)/.installed: tools/scan/requirements.txt
	test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/scan/requirements.txt
	touch $@

.PHONY: scan
scan: render $(SCAN_VENV)/.installed
	skip=$(SCAN_SKIP); grep -Eq '^ *tfserving:target: *eks' Pulumi.$(STACK).yaml || \
		skip=$$skip,$(SCAN_SKIP_MINIKUBE); \
	$(SCAN_VENV)/bin/checkov --file $(OUT)/kubernetes.yaml --framework kubernetes \
		--skip-download --quiet --compact --skip-check $$skip

# On macOS minikube's node ports are not routable from the host (Docker driver): check through
# `kubectl port-forward` there. Override with SMOKE_FLAGS= or SMOKE_FLAGS=--port-forward.
SMOKE_FLAGS ?= $(if $(and $(filter Darwin,$(shell uname -s)),$(filter-out eks,$(STACK))),--port-forward)

smoke: $(BIN)/.installed
	$(BIN)/python -m tools.smoke --stack $(STACK) $(SMOKE_FLAGS)

loadtest: $(BIN)/.installed
	$(BIN)/python -m tools.loadtest.run --stack $(STACK) --run-time $(DURATION) --csv $(OUT)/loadtest

autoscale-demo: $(BIN)/.installed
	$(BIN)/python -m tools.autoscale --stack $(STACK) --out $(OUT)/autoscale

bench: $(BIN)/.installed
	$(BIN)/python -m tools.bench.gateway

proto: $(BIN)/.installed
	$(BIN)/python -m gateway.proto.generate

dev: minikube
	$(MAKE) up STACK=$(STACK)
	$(MAKE) smoke STACK=$(STACK)

clean:
	rm -rf build .mypy_cache .ruff_cache
