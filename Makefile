# Two commands on a fresh machine: `make synth` (main job) and `make test`.
# Each bootstraps what it needs: a Python 3.11 venv and the pinned npm tools.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAGE ?= dev
# CI passes APPROVAL=never; a person is asked before IAM broadens.
APPROVAL ?= broadening
STAGES := $(shell $(PYTHON) -c 'import json; print(" ".join(json.load(open("cdk.json"))["context"]["stages"]))')
# Node 22 from package.json first on PATH: the CDK CLI and jsii run on it.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
CDK := $(CURDIR)/node_modules/.bin/cdk

.PHONY: synth test local logs rehearse deploy destroy diff promote smoke digest clean deps

$(VENV)/.installed: requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

.venv-emulators/.installed: requirements-emulators.txt
	$(PYTHON) -m venv .venv-emulators
	.venv-emulators/bin/python -m pip install --quiet --upgrade pip
	.venv-emulators/bin/python -m pip install --quiet -r requirements-emulators.txt
	touch $@

.venv-checkov/.installed: requirements-checkov.txt
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --upgrade pip
	.venv-checkov/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

deps: $(VENV)/.installed node_modules/.installed .venv-emulators/.installed .venv-checkov/.installed

## synth: synthesize every stage (cdk-nag gate included) and cfn-lint the templates
synth: deps
	rm -rf cdk.out
	@for stage in $(STAGES); do \
		echo "== synth $$stage"; \
		$(CDK) synth --quiet -c stage=$$stage -o cdk.out/$$stage '**' || exit 1; \
	done
	@# cfn-lint exit code: bit 2 = errors, 1 = crash; warnings (4) are printed, not fatal.
	$(VENV)/bin/cfn-lint cdk.out/*/assembly-*/*.template.json; test $$(( $$? & 3 )) -eq 0
	BC_SKIP_MAPPING=TRUE .venv-checkov/bin/checkov -d cdk.out --framework cloudformation --quiet --compact
	@echo "All stages synthesized; cdk-nag, cfn-lint and checkov clean: $(STAGES)"

## local: package HANDLE (default: a demo model made on the spot) through the
## real SageMaker training toolkit, then load it as TF Serving would
local: deps
	$(PY) -m tools.local_job --handle "$(HANDLE)"

## rehearse: deploy, update and destroy a stage with the real CDK CLI on local
## emulators (ministack + moto), no AWS account
rehearse: deps
	$(PY) -m tools.rehearse

## test: the whole test suite
test: deps
	$(PY) -m pytest

## deploy / destroy / diff: one stage on real AWS (STAGE=dev|staging|prod)
deploy: deps
	$(CDK) deploy -c stage=$(STAGE) --all --require-approval $(APPROVAL)

diff: deps
	$(CDK) diff -c stage=$(STAGE) --all

## logs: follow the stage's packaging job while `make deploy` waits on it
logs: deps
	$(PY) -m tools.follow_logs --stage $(STAGE)

## destroy: remove the stage, then fail if any SageMaker resource of it is left
destroy: deps
	$(CDK) destroy -c stage=$(STAGE) --all --force
	$(PY) -m promotion.leftovers --stage $(STAGE)

## promote: FROM=dev TO=staging ships dev's verified artifact (SOURCE_ROLE_ARN to
## read another account); RECORD=promotions/... TO=prod rolls back to a record
promote: deps
	$(PY) -m promotion.promote --to $(TO) $(if $(RECORD),--record $(RECORD),--from $(FROM)) \
		$(if $(SOURCE_ROLE_ARN),--source-role-arn $(SOURCE_ROLE_ARN)) $(if $(DIGEST),--expect-digest $(DIGEST))

## digest: print the tree digest STAGE serves (CI hands dev's on to the promotions)
digest: deps
	@$(PY) -m promotion.digest --stage $(STAGE)

## smoke: call STAGE's endpoint with its artifact's sample and check the answer
smoke: deps
	$(PY) -m promotion.smoke --stage $(STAGE)

clean:
	rm -rf cdk.out .pytest_cache
