# BucketWarden developer commands. Every target sets up what it needs.
SHELL := /bin/bash
# The Lambda runtime's Python (3.13) when it is installed, else the machine's python3.
PYTHON ?= $(shell for p in $$HOME/.pyenv/versions/3.13*/bin/python3 python3.13 python3; do "$$p" -c 'import sys' >/dev/null 2>&1 && { command -v "$$p"; break; }; done)
VENV := .venv
BIN := $(VENV)/bin
TOOLS := .tools
SAM := $(TOOLS)/sam/bin/sam
PYTEST_WORKERS ?= 2

.PHONY: setup browser test demo bench lint format template template-check tools clean fuzz

# Both packages, editable: the runtime (layers/, what Lambda runs) and the tooling beside it
# (tooling/, the `bucketwarden` command), with the test and lint tools. setuptools warns that a
# folder named as the package may shadow it: layers/ and tooling/ hold exactly the package, so
# that warning would only hide real output.
$(BIN)/bucketwarden: layers/pyproject.toml tooling/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install --quiet -e ./layers -e './tooling[dev]'
	@touch $@

setup: $(BIN)/bucketwarden ## Create .venv with both packages (editable), the CLI and test tools

# The HTML report's browser tests drive a Chromium; without one they are skipped, saying why.
# `make test` never installs system packages; this target does (apt-get, as root or with sudo).
browser: ## Headless chromium and chromedriver (apt-get, needs root) for the browser tests
	scripts/install-browser

test: setup ## Run the test suite (the browser tests run where Chromium is found)
	$(BIN)/pytest -n $(PYTEST_WORKERS) -q

# The property and fuzz tests with many more examples than `make test` runs (about half an hour).
fuzz: setup ## Long property-based and fuzz run (hypothesis profile "fuzz")
	BUCKETWARDEN_HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q tests/test_properties.py \
		tests/test_event_fuzz.py tests/test_bucket_policy_convergence.py

demo: setup ## Make buckets drift on an embedded AWS and watch them fixed
	$(BIN)/bucketwarden demo --accounts 2

bench: setup ## API calls, CPU, memory and import time per control; local drift-to-fix latency; sweep scale; an organization's sweep
	$(BIN)/python -m bucketwarden_tools.bench
	$(BIN)/python -m bucketwarden_tools.bench_local
	$(BIN)/python -m bucketwarden_tools.bench_sweep
	$(BIN)/python -m bucketwarden_tools.bench_org_sweep

# mypy's settings (both packages and functions/, typed boto3 clients) are in pyproject.toml.
lint: setup ## ruff lint and format check; mypy type check of both packages
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	@echo "mypy: layers/bucketwarden, tooling/bucketwarden_tools, functions"
	$(BIN)/mypy

format: setup
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# A half-made environment (interrupted install) is removed first.
$(SAM):
	rm -rf $(TOOLS)/sam
	$(PYTHON) -m venv $(TOOLS)/sam
	$(TOOLS)/sam/bin/pip install --quiet --upgrade pip
	$(TOOLS)/sam/bin/pip install --quiet aws-sam-cli cfn-lint

tools: $(SAM) ## SAM CLI and cfn-lint in their own environment (they pin boto3)

# The family blocks of template.yaml (one function, role, queue, log group and alarms per family)
# are written from the catalogue, and so are the member account templates (member/);
# tests/test_template_generated.py and tests/test_member_templates.py fail until they are.
template: setup ## Write template.yaml's family blocks and the member templates from the catalogue
	$(BIN)/python scripts/generate_template.py
	$(BIN)/python scripts/generate_member_templates.py
	$(BIN)/python scripts/generate_fsbp_doc.py

template-check: setup tools ## generated blocks and member templates in step, sam validate --lint, cfn-lint (translated hub, member templates), sam build
	$(BIN)/python scripts/generate_template.py --check
	$(BIN)/python scripts/generate_member_templates.py --check
	$(BIN)/python scripts/generate_fsbp_doc.py --check
	PATH="$(dir $(PYTHON)):$$PATH" scripts/check-template $(TOOLS)/sam/bin

# checkov and parliament in their own environment (checkov pins boto3 too). parliament still
# imports pkg_resources, which setuptools 81 removed. The stamp is written last, so an
# interrupted install is redone.
SECURITY_TOOLS := $(TOOLS)/security
$(SECURITY_TOOLS)/installed:
	rm -rf $(SECURITY_TOOLS)
	$(PYTHON) -m venv $(SECURITY_TOOLS)
	$(SECURITY_TOOLS)/bin/pip install --quiet --upgrade pip
	$(SECURITY_TOOLS)/bin/pip install --quiet 'checkov>=3,<4' 'parliament>=1.6,<2' 'setuptools<81'
	@touch $@

.PHONY: security-tools security-check
security-tools: $(SECURITY_TOOLS)/installed ## checkov and parliament in their own environment

security-check: tools security-tools ## checkov on the template (as written and translated), parliament on its IAM policies
	scripts/security-check $(TOOLS)/sam/bin $(SECURITY_TOOLS)/bin

clean:
	rm -rf $(VENV) $(TOOLS) .aws-sam .pytest_cache .ruff_cache
