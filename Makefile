# tfserving: TensorFlow Serving on Kubernetes with one `pulumi up`.
#   make dev                  local cluster + local state + pulumi up + smoke test (the laptop path)
#   make dev STACK=kind       the same on kind; STACK=gateway: two tiers on minikube
#   make test                 lint, type check, all tests (what CI runs)
#   make render|validate STACK=...          offline: the stack's objects, and strict schema checks
#   make preview|up|destroy|smoke STACK=dev|kind|gateway|eks|eks-gpu
#   make loadtest STACK=dev DURATION=60s   Locust, headless, step load; prints the summary
#   make autoscale-demo STACK=dev          load + watch the HPA -> build/<stack>/autoscale/*.csv,png
#   make bench                             gateway throughput, latency and CPU per request
#   make mutate [AREAS="config gateway"]   mutation testing (slow, not in CI): score + survivors
#   make proto                             regenerate the gateway's TF Serving protobuf code
#   make print-target STACK=...            the stack's tfserving:target (what make acts on)

STACK ?= dev
PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin
OUT ?= build/$(STACK)
DURATION ?= 60s
STACK_FILE := Pulumi.$(STACK).yaml

# What a stack runs on comes from its file (tfserving:target; the program's default is
# minikube), never from its name: `make up STACK=eks-gpu` is an eks stack.
stack_key = $(shell sed -n -E "s/^[[:space:]]*tfserving:$(1):[[:space:]]*[\"']?([A-Za-z0-9._-]+).*/\1/p" $(STACK_FILE) 2>/dev/null | head -n 1)
TARGET := $(or $(call stack_key,target),minikube)
LOCAL_TARGET := $(filter minikube kind,$(TARGET))
# minikube: the profile is the stack's kubeContext (minikube names its context after it).
MINIKUBE_PROFILE ?= $(or $(call stack_key,kubeContext),minikube)

# Local file backend inside the repo: no Pulumi account needed.
export PULUMI_BACKEND_URL ?= file://$(CURDIR)/.pulumi-state
export PULUMI_SKIP_UPDATE_CHECK := true
# The dev passphrase is public (README): it only protects secrets of local stacks' state. An eks
# stack's state holds a kubeconfig and more, so its passphrase must be your own (checked below).
DEV_PASSPHRASE := tfserving-dev-only
ifneq ($(LOCAL_TARGET),)
export PULUMI_CONFIG_PASSPHRASE ?= $(DEV_PASSPHRASE)
endif

.PHONY: help dev test lint typecheck pytest render validate preview up destroy smoke stack tools \
	tools-up minikube kind-cluster cluster passphrase loadtest autoscale-demo bench mutate proto \
	clean print-target

help:
	@sed -n 's/^#   //p' Makefile

print-target:
	@echo $(TARGET)

# --- virtualenvs, installed with uv -----------------------------------------------------------
# requirements.txt is what deploying needs (the program, render, smoke); requirements-dev.txt adds
# what testing needs (lint, types, tests, the gateway's packages, load test, plots, bench). Both
# pin exact versions; no lockfile with download addresses. uv (pinned, bootstrapped with pip)
# installs them in seconds instead of minutes, with progress on a terminal.
UV_VERSION := 0.13.9
# In a directory named site-packages: linters and type checkers leave those alone, even in a
# copy of the project without .git (whose .gitignore would otherwise keep them out of build/).
UV_DIR := build/uv-$(UV_VERSION)/site-packages
UV := $(UV_DIR)/bin/uv
DEPLOY_STAMP := $(BIN)/.deploy-installed
DEV_STAMP := $(BIN)/.dev-installed
# uv reads no pip configuration: hand it pip's (pip.conf, PIP_* variables; the environment wins
# over files, as in pip), so both install from the same index, mirrors and local wheels:
# index-url, extra-index-url (space-separated for both), find-links (comma-separated for uv),
# constraint, and pip's CA bundle (SSL_CERT_FILE). With extra indexes pip takes the best match
# across all of them; uv's default would stop at the first index that has the name (where an
# older version may be all there is), hence unsafe-best-match, the pip behaviour.
UV_ENV = cfg=$$($(PYTHON) -m pip config list 2>/dev/null); \
	for scope in global install :env:; do \
		eval "$$(printf '%s\n' "$$cfg" | sed -n -E \
			-e "s/^$$scope\.index-url=(.*)/export UV_INDEX_URL=\1/p" \
			-e "s/^$$scope\.extra-index-url=(.*)/export UV_EXTRA_INDEX_URL=\1/p" \
			-e "s/^$$scope\.find-links=(.*)/export UV_FIND_LINKS=\1/p" \
			-e "s/^$$scope\.constraint=(.*)/export UV_CONSTRAINT=\1/p" \
			-e "s/^$$scope\.cert=(.*)/export SSL_CERT_FILE=\1/p")"; \
	done; \
	if [ -n "$${UV_FIND_LINKS:-}" ]; then export UV_FIND_LINKS="$$(echo $$UV_FIND_LINKS | tr ' ' ',')"; fi; \
	if [ -n "$${UV_EXTRA_INDEX_URL:-}" ]; then export UV_INDEX_STRATEGY=$${UV_INDEX_STRATEGY:-unsafe-best-match}; fi

# uv itself: `pip install --target` (no venv of its own, allowed on externally managed Pythons)
# into build/, done only when something is to be installed; a Python without pip (Debian's
# python3 without python3-pip) lends the pip of a throwaway venv.
UV_PIP = $(PYTHON) -m pip --version >/dev/null 2>&1 && echo "$(PYTHON) -m pip" || \
	{ $(PYTHON) -m venv build/uv-bootstrap >/dev/null && echo build/uv-bootstrap/bin/pip; }
UV_BOOTSTRAP = test -x $(UV) || { echo "make: bootstrapping uv $(UV_VERSION) into $(UV_DIR)/"; \
	$$($(UV_PIP)) install --quiet --disable-pip-version-check --root-user-action=ignore \
	--target $(UV_DIR) uv==$(UV_VERSION); }
# pip stays in the venv (--seed): Pulumi's pip toolchain (Pulumi.yaml) lists packages with it.
UV_VENV = $(UV_BOOTSTRAP); test -x $(1)/bin/python || { echo "make: creating $(1)/"; \
	$(UV) venv --quiet --seed --python $(PYTHON) $(1); }
uv_install = @$(call UV_VENV,$(1)); $(UV_ENV); \
	echo "make: installing $(2) into $(1)/ with uv $(UV_VERSION)"; \
	$(UV) pip install --python $(1)/bin/python -r $(2)

$(DEPLOY_STAMP): requirements.txt
	$(call uv_install,$(VENV),requirements.txt)
	@touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt gateway/requirements.txt \
		$(wildcard tools/bench/requirements.txt) $(wildcard tools/mutate/requirements.txt)
	$(call uv_install,$(VENV),requirements-dev.txt)
	@touch $@ $(DEPLOY_STAMP)

# --- tests: what CI runs (.ci/run) ------------------------------------------------------------

# Two at a time on the machine's cores: pytest (the longest) beside mypy, then ruff and zizmor;
# every check runs (-k) so one failure does not hide another.
test: $(DEV_STAMP)
	@$(MAKE) --no-print-directory -j2 -k pytest typecheck lint zizmor

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(DEV_STAMP)
	$(BIN)/mypy .

# Two test processes (pytest-xdist): many tests wait on servers and subprocesses, and the suite's
# CPU time alone is more than a minute and a half. PYTEST_FLAGS= runs them in one.
PYTEST_FLAGS ?= -n 2
pytest: $(DEV_STAMP)
	$(BIN)/pytest $(PYTEST_FLAGS)

# Workflow security linter over .github/ (workflows and dependabot.yml), offline: no findings
# allowed; a justified exception is an inline `# zizmor: ignore[rule] reason` or goes in
# .github/zizmor.yml with a comment.
.PHONY: zizmor
zizmor: $(DEV_STAMP)
	$(BIN)/zizmor --offline --strict-collection --config .github/zizmor.yml .github

# --- offline review ---------------------------------------------------------------------------

render: $(DEPLOY_STAMP)
	$(BIN)/python -m tools.render --stack $(STACK) --out $(OUT)

# Render, then validate every object against the strict schemas of each supported Kubernetes
# version and every custom resource against its CRD (components/crds/): no cluster, no network.
validate: $(DEV_STAMP)
	$(BIN)/python -m tools.validate --stack $(STACK) --out $(OUT)

# --- real deployments: need the pulumi CLI and the target's tools ------------------------------

TOOLS_minikube := pulumi kubectl minikube
TOOLS_kind := pulumi kubectl kind
TOOLS_eks := pulumi kubectl aws
# What building images needs on top (kind and eks build on this machine's Docker; minikube
# builds in its own daemon through docker-env).
TOOLS_UP_kind := docker
TOOLS_UP_eks := docker
HINT_pulumi := https://www.pulumi.com/docs/install/
HINT_kubectl := https://kubernetes.io/docs/tasks/tools/
HINT_minikube := https://minikube.sigs.k8s.io/docs/start/ (a driver such as Docker, 2 CPUs, 4 GB)
HINT_kind := https://kind.sigs.k8s.io/docs/user/quick-start/ (needs Docker)
HINT_docker := https://docs.docker.com/get-docker/ (with buildx)
HINT_aws := AWS CLI v2, https://aws.amazon.com/cli/ (the kubeconfig runs aws eks get-token)

# Every missing tool at once, each with where to get it.
check_tools = missing=""; \
	$(foreach t,$(1),command -v $(t) >/dev/null 2>&1 || missing="$$missing|$(t): $(HINT_$(t))";) \
	if [ -n "$$missing" ]; then \
		echo "make: stack $(STACK) (target $(TARGET)) needs tools that are not installed:"; \
		echo "$$missing" | tr '|' '\n' | sed '/^$$/d; s/^/  /'; exit 1; \
	fi

tools:
	@$(call check_tools,$(TOOLS_$(TARGET)))
ifeq ($(TARGET),eks)
	@aws sts get-caller-identity >/dev/null 2>&1 || { echo "no AWS credentials: aws configure / aws sso login / AWS_PROFILE"; exit 1; }
endif

tools-up:
	@$(call check_tools,$(TOOLS_$(TARGET)) $(TOOLS_UP_$(TARGET)))
ifeq ($(TARGET),eks)
	@docker buildx version >/dev/null 2>&1 || { echo "docker buildx not found: images are built here and pushed to ECR"; exit 1; }
endif

# minikube: --cni=calico only when creating the cluster (minikube's default CNI does not enforce
# NetworkPolicies; an existing cluster keeps the CNI it was made with).
minikube: tools-up
	@if minikube -p $(MINIKUBE_PROFILE) status >/dev/null 2>&1; then \
		echo "minikube: profile $(MINIKUBE_PROFILE) is running"; \
	elif minikube profile list -o json 2>/dev/null | grep -q '"Name":"$(MINIKUBE_PROFILE)"'; then \
		echo "minikube: starting the existing profile $(MINIKUBE_PROFILE) with the CPUs, memory and CNI it was created with (NetworkPolicies are enforced only if that was --cni=calico)"; \
		minikube -p $(MINIKUBE_PROFILE) start; \
	else \
		echo "minikube: creating profile $(MINIKUBE_PROFILE) with 2 CPUs, 4 GB and --cni=calico (Calico enforces the stack's NetworkPolicies)"; \
		minikube -p $(MINIKUBE_PROFILE) start --cpus=2 --memory=4096 --cni=calico; \
	fi
	minikube -p $(MINIKUBE_PROFILE) addons enable metrics-server

# kind: the cluster from tools/kind/cluster.yaml (node ports 30001/30002 on 127.0.0.1); the
# program installs metrics-server itself (targets/kind.py).
kind-cluster: tools-up $(DEPLOY_STAMP)
	@cluster=$$($(BIN)/python -m tools.kind cluster --stack $(STACK)) || exit 2; \
	if kind get clusters 2>/dev/null | grep -qx "$$cluster"; then \
		echo "kind: cluster $$cluster exists"; \
	else \
		echo "kind: creating cluster $$cluster from tools/kind/cluster.yaml (node ports 30001 and 30002 on 127.0.0.1; kindnet enforces NetworkPolicies)"; \
		kind create cluster --config tools/kind/cluster.yaml --name "$$cluster"; \
	fi

CLUSTER_minikube := minikube
CLUSTER_kind := kind-cluster
cluster: $(CLUSTER_$(TARGET))

passphrase:
ifeq ($(TARGET),eks)
	@if [ -n "$${PULUMI_CONFIG_PASSPHRASE_FILE:-}" ]; then \
		if grep -qx '$(DEV_PASSPHRASE)' "$$PULUMI_CONFIG_PASSPHRASE_FILE"; then \
			echo "make: stack $(STACK) is on eks: PULUMI_CONFIG_PASSPHRASE_FILE holds the public dev passphrase; use your own"; exit 1; \
		fi; \
	elif [ -z "$${PULUMI_CONFIG_PASSPHRASE:-}" ] || [ "$$PULUMI_CONFIG_PASSPHRASE" = '$(DEV_PASSPHRASE)' ]; then \
		echo "make: stack $(STACK) is on eks: set PULUMI_CONFIG_PASSPHRASE to a passphrase of your own (not empty, not the public $(DEV_PASSPHRASE)), e.g. openssl rand -base64 32, kept in a password manager"; exit 1; \
	fi
endif

stack: passphrase tools $(DEPLOY_STAMP)
	@mkdir -p .pulumi-state
	pulumi stack select $(STACK) 2>/dev/null || pulumi stack init $(STACK)

# The policy pack's own virtualenv (PulumiPolicy.yaml names it), created with pip as the
# workflows do (tests/workflows pins it); small, and not on make test's path.
policy/venv/.installed: policy/requirements.txt
	test -x policy/venv/bin/python || $(PYTHON) -m venv policy/venv
	policy/venv/bin/pip install --quiet --disable-pip-version-check -r policy/requirements.txt
	touch $@

preview: stack policy/venv/.installed
	pulumi preview --stack $(STACK) --diff --policy-pack policy

PULUMI_UP = pulumi up --stack $(STACK) --yes --policy-pack policy
# minikube: images are built into minikube's own Docker daemon (docker-env), so the node has them
# without a registry. kind: built into this machine's daemon, then loaded onto the node with
# `kind load docker-image` between a targeted up of the images and the whole up (targets/kind.py
# says why). eks: built here and pushed to ECR.
up: tools-up stack policy/venv/.installed
ifeq ($(TARGET),minikube)
	eval $$(minikube -p $(MINIKUBE_PROFILE) docker-env) && $(PULUMI_UP)
else ifeq ($(TARGET),kind)
	@targets=$$($(BIN)/python -m tools.kind images --stack $(STACK) --targets) || exit 2; \
	if [ -n "$$targets" ]; then \
		cluster=$$($(BIN)/python -m tools.kind cluster --stack $(STACK)) || exit 2; \
		tags=$$($(BIN)/python -m tools.kind images --stack $(STACK)) || exit 2; \
		echo "kind: building the images first: $$tags"; \
		eval "$(PULUMI_UP) $$targets" && \
		echo "kind: kind load docker-image --name $$cluster $$tags" && \
		kind load docker-image --name "$$cluster" $$tags || exit 1; \
	fi
	$(PULUMI_UP)
else
	$(PULUMI_UP)
endif

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
# CKV_K8S_43 (image by digest) and CKV_K8S_15 (imagePullPolicy Always), local stacks only
#   (minikube, kind): model and gateway images are local tags built into the node's Docker
#   daemon or loaded onto it, which no registry serves; the stock image is pinned by version tag.
#   eks runs digest-pinned ECR images and is held to both.
SCAN_SKIP_LOCAL := CKV_K8S_43,CKV_K8S_15

$(SCAN_VENV)/.installed: tools/scan/requirements.txt
	test -x $(SCAN_VENV)/bin/python || $(PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/scan/requirements.txt
	touch $@

.PHONY: scan
scan: render $(SCAN_VENV)/.installed
	skip=$(SCAN_SKIP); grep -Eq "^ *tfserving:target: *[\"']?eks" Pulumi.$(STACK).yaml || \
		skip=$$skip,$(SCAN_SKIP_LOCAL); \
	$(SCAN_VENV)/bin/checkov --file $(OUT)/kubernetes.yaml --framework kubernetes \
		--skip-download --quiet --compact --skip-check $$skip

# On macOS minikube's node ports are not routable from the host (Docker driver): check through
# `kubectl port-forward` there. kind maps its node ports to 127.0.0.1 (tools/kind/cluster.yaml).
# Override with SMOKE_FLAGS= or SMOKE_FLAGS=--port-forward.
SMOKE_FLAGS ?= $(if $(and $(filter Darwin,$(shell uname -s)),$(filter minikube,$(TARGET))),--port-forward)

smoke: $(DEPLOY_STAMP)
	$(BIN)/python -m tools.smoke --stack $(STACK) $(SMOKE_FLAGS)

loadtest: $(DEV_STAMP)
	$(BIN)/python -m tools.loadtest.run --stack $(STACK) --run-time $(DURATION) --csv $(OUT)/loadtest

autoscale-demo: $(DEV_STAMP)
	$(BIN)/python -m tools.autoscale --stack $(STACK) --out $(OUT)/autoscale

bench: $(DEV_STAMP)
	$(BIN)/python -m tools.bench.gateway

# Mutation testing of config/, targets/, components/ and the gateway's core: an hour or more at
# low priority, results kept in build/mutate/ (a re-run tests only what changed). Not in CI.
AREAS ?=
mutate: $(DEV_STAMP)
	$(BIN)/python -m tools.mutate $(AREAS)

proto: $(DEV_STAMP)
	$(BIN)/python -m gateway.proto.generate

dev: cluster
	$(MAKE) up STACK=$(STACK)
	$(MAKE) smoke STACK=$(STACK)

clean:
	rm -rf build .mypy_cache .ruff_cache
