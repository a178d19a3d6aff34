# Two commands on a fresh machine: `make synth` (main job) and `make test`.
# Each bootstraps what it needs: a Python 3.11 or 3.12 venv and the pinned npm tools.
# `make help` lists every target.

# The first of python3.11, python3.12 that runs (a pyenv shim may exist and fail).
PYTHON ?= $(shell for p in python3.11 python3.12; do $$p -c '' 2>/dev/null && { echo $$p; break; }; done)
VENV := .venv
PY := $(VENV)/bin/python
STAGE ?= dev
# CI passes APPROVAL=never; a person is asked before IAM broadens.
APPROVAL ?= broadening
# Node 22 from package.json first on PATH: the CDK CLI and jsii run on it.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)
CDK := $(CURDIR)/node_modules/.bin/cdk

.PHONY: help synth test local logs rehearse deploy destroy diff promote promote-arguments stage-argument assembly status smoke digest clean \
	deps deps-dev deps-emulators deps-checkov deps-test python \
	installed-deps installed-deps-dev installed-deps-emulators installed-deps-checkov installed-deps-test

help:
	@echo "make TARGET [VARIABLE=value ...]"
	@sed -n 's/^## //p' Makefile

python:
	@test -n "$(PYTHON)" && $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] not in ((3, 11), (3, 12)))' 2>/dev/null \
		|| { echo "Python 3.11 or 3.12 is needed (python3.11 or python3.12 on PATH, or PYTHON=...); found $(or $(PYTHON),neither)." >&2; exit 1; }

# Two layers in one venv: what synth, deploy and the delivery tools need, and on
# top what the tests, `make local` and the rehearsal need (TensorFlow, the training
# toolkit, moto). A fresh `make synth` installs only the first.
$(VENV)/.installed: requirements.txt | python
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.installed-dev: $(VENV)/.installed requirements-dev.txt
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

.venv-emulators/.installed: requirements-emulators.txt | python
	$(PYTHON) -m venv .venv-emulators
	.venv-emulators/bin/python -m pip install --quiet --upgrade pip
	.venv-emulators/bin/python -m pip install --quiet -r requirements-emulators.txt
	touch $@

.venv-checkov/.installed: requirements-checkov.txt | python
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet --upgrade pip
	.venv-checkov/bin/python -m pip install --quiet -r requirements-checkov.txt
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# What each target needs: the app and tools; the test and job runtime; the emulators;
# checkov; all of them for the tests. The installs are independent of each other
# (but for the two layers of .venv), so each set runs side by side in a sub-make
# (-j4, unless the caller gave its own -j): a fresh machine waits for the longest
# install, not for their sum.
deps deps-dev deps-emulators deps-checkov deps-test:
	@$(MAKE) --no-print-directory $(if $(filter -j%,$(MAKEFLAGS)),,-j4) installed-$@

installed-deps: $(VENV)/.installed node_modules/.installed ; @:
installed-deps-dev: installed-deps $(VENV)/.installed-dev ; @:
installed-deps-emulators: installed-deps-dev .venv-emulators/.installed ; @:
installed-deps-checkov: installed-deps .venv-checkov/.installed ; @:
installed-deps-test: installed-deps-emulators installed-deps-checkov ; @:

## synth                 synthesize every stage of cdk.json (cdk-nag gate), then cfn-lint and checkov
synth: deps-checkov
	rm -rf cdk.out
	@stages=$$($(PY) -m tools.stages) || exit 1; \
	for stage in $$stages; do \
		echo "== synth $$stage"; \
		$(CDK) synth --quiet -c stage=$$stage -o cdk.out/$$stage || exit 1; \
	done; \
	$(VENV)/bin/cfn-lint cdk.out/*/*.template.json; status=$$?; \
	if [ $$(( status & 7 )) -ne 0 ]; then echo "cfn-lint found errors or warnings (or crashed): exit $$status" >&2; exit 1; fi; \
	BC_SKIP_MAPPING=TRUE .venv-checkov/bin/checkov -d cdk.out --framework cloudformation --quiet --compact || exit 1; \
	echo "All stages synthesized; cdk-nag, cfn-lint and checkov clean:" $$stages

## test                  the static gates (ruff lint and format, mypy), then the whole test suite
test: deps-test
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy
	$(PY) -m pytest

## local                 package HANDLE (default: a demo model made on the spot) through the real
##                       SageMaker training toolkit, then load it as TF Serving would;
##                       MODEL_NAME=, SIGNATURE=, SAMPLE='[...]', OUT=folder (keep it), VERBOSE=1
local: deps-dev
	@$(PY) -m tools.local_job

## rehearse              deploy, update, promote and destroy with the README's commands on local
##                       emulators (ministack + moto), no AWS account
rehearse: deps-emulators
	$(PY) -m rehearsal

# An empty STAGE= (`make deploy STAGE=`) would reach the tool as a bare `--stage`,
# which argparse reports in its own terms; said in make's instead, before anything
# is installed. The value is tested by make, never handed to the shell.
stage-argument:
	@$(if $(strip $(STAGE)),:,echo "make $(firstword $(MAKECMDGOALS)) needs STAGE=<stage>, a stage of cdk.json (STAGE=dev, for one); STAGE= is empty" >&2; exit 2)

## deploy STAGE=dev      both stacks of the stage on AWS (APPROVAL=never skips the IAM prompt)
# Synthesized first, so that the deployed endpoint can be checked against the
# update's rules (delivery/preflight.py) before anything deploys. `--progress
# events`: on a terminal the CLI's default progress bar redraws its lines in place
# and would write over the progress lines printed beside it.
deploy: stage-argument deps
	@$(PY) -m tools.credentials --stage $(STAGE) --command deploy
	$(CDK) synth --quiet -c stage=$(STAGE) -o cdk.out/deploy-$(STAGE)
	$(PY) -m tools.deploy_progress --stage $(STAGE) --assembly cdk.out/deploy-$(STAGE) -- \
		$(CDK) deploy --app cdk.out/deploy-$(STAGE) --all --require-approval $(APPROVAL) --progress events

## diff STAGE=prod       what a deploy of the stage would change
diff: stage-argument deps
	@$(PY) -m tools.credentials --stage $(STAGE) --command diff
	$(CDK) diff -c stage=$(STAGE)

## logs STAGE=dev        follow the stage's packaging job while `make deploy` waits on it
logs: stage-argument deps
	$(PY) -m tools.follow_logs --stage $(STAGE)

## destroy STAGE=dev     remove the stage, then fail if any SageMaker resource of it is left
destroy: stage-argument deps
	@$(PY) -m tools.credentials --stage $(STAGE) --command destroy
	$(CDK) destroy --all -c stage=$(STAGE) --force
	$(PY) -m delivery.leftovers --stage $(STAGE)

## promote FROM=dev TO=staging   ship FROM's verified artifact to TO [SOURCE_ROLE_ARN=, SOURCE_REGION=, DIGEST=, ASSEMBLY=];
##         TO=prod RECORD=promotions/<file>.json|previous|last-verified   roll TO back: to that record,
##                       undoing the newest deploy, or to the newest state whose smoke test passed
# Checked before anything is installed.
promote-arguments:
	@test -n "$$TO" -a -n "$$FROM$$RECORD" || { echo "make promote needs TO=<stage> and either FROM=<stage> (promote) or RECORD=<key>|previous|last-verified (roll back)" >&2; exit 2; }
	@test -z "$$FROM" -o -z "$$RECORD" || { echo "make promote takes FROM= (promote) or RECORD= (roll back), not both" >&2; exit 2; }

# Values are read by the shell from the environment, never expanded by make into
# the recipe: make would run a `$(shell ...)` inside a value. CI passes DIGEST and
# SOURCE_* in the environment (a value on make's command line is make syntax).
# An empty FROM= or RECORD= counts as not given; any other variable, once set,
# is passed even when empty, so that an empty DIGEST fails the digest check
# instead of switching it off.
promote: promote-arguments deps
	@$(PY) -m delivery.promote --to "$$TO" $${RECORD:+--record "$$RECORD"} $${FROM:+--from "$$FROM"} \
		$${SOURCE_ROLE_ARN+--source-role-arn "$$SOURCE_ROLE_ARN"} \
		$${SOURCE_REGION+--source-region "$$SOURCE_REGION"} \
		$${DIGEST+--expect-digest "$$DIGEST"} \
		$${ASSEMBLY+--assembly "$$ASSEMBLY"}

## assembly STAGE=staging DIGEST=sha256   synthesize the stage pinned to that digest's promoted copy, into
##         cdk.out/assembly-STAGE (CI builds each once per commit; make promote ASSEMBLY=... deploys it)
assembly: stage-argument deps
	$(PY) -m delivery.assembly --stage $(STAGE) --digest "$$DIGEST" --out cdk.out/assembly-$(STAGE)

## status STAGE=staging  one screen for the stage: stacks, endpoint, what it serves, last promotion,
##                       alarms, last packaging job, dashboard [JSON=1 for scripts]
status: stage-argument deps
	$(PY) -m delivery.status --stage $(STAGE) $(if $(filter-out 0,$(JSON)),--json)

## digest STAGE=dev      print the tree digest the stage serves (CI hands dev's on to the promotions)
digest: stage-argument deps
	@$(PY) -m delivery.digest --stage $(STAGE)

## smoke STAGE=staging   call the stage's endpoint with its artifact's sample and check the answer
smoke: stage-argument deps
	$(PY) -m delivery.smoke --stage $(STAGE)

## clean                 remove cdk.out and pytest's cache
clean:
	rm -rf cdk.out .pytest_cache

# Every tool prints one line for an expected failure; DEBUG=1 shows the traceback.
