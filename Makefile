# tnoctl - the two set-up commands are `make demo` and `make test` (run as root on Debian 12).
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
PY := $(VENV)/bin/python
TNOCTL := $(VENV)/bin/tnoctl
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml apt-packages.txt | sha256sum | cut -c1-12)
# As root everything runs (unit, integration, lab end-to-end); otherwise root/lab tests are deselected.
PYTEST_MARKERS := $(if $(filter 0,$(shell id -u)),,-m "not root")
export LANG := C.UTF-8
export LC_ALL := C.UTF-8

.PHONY: help install lint test test-unit generate demo lab-down bench bench-lab collection clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml apt-packages.txt
	scripts/apt-install.sh apt-packages.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)  ## install Debian packages and the Python venv (idempotent, fast when done)

lint: install  ## ruff + import-linter (the house layering) + ansible-lint (production profile)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	PATH=$(abspath $(VENV))/bin:$$PATH $(VENV)/bin/ansible-lint --offline -q roles playbooks

test: install lint  ## everything: lint, unit, integration, lab end-to-end (as root)
ifeq ($(shell id -u),0)
	@# The lab's base image (a cold debootstrap: minutes) is built beside the unit tests, on the other core;
	@# the e2e session's `lab up` waits for it on the lab lock. Every suite runs; any failure fails the target.
	@$(TNOCTL) lab prepare > $(VENV)/lab-prepare.log 2>&1 & prep=$$!; \
	$(PY) -m pytest --durations=15 tests/unit tests/integration; unit=$$?; \
	wait $$prep || { echo "lab prepare failed (the e2e session retries it):"; tail -5 $(VENV)/lab-prepare.log; }; \
	$(PY) -m pytest --durations=40 tests/e2e; e2e=$$?; \
	test $$unit -eq 0 -a $$e2e -eq 0
else
	$(PY) -m pytest $(PYTEST_MARKERS) --durations=15 tests/unit tests/integration tests/e2e
endif

test-unit: install  ## pure unit tests only (seconds)
	$(PY) -m pytest tests/unit

generate: install  ## regenerate docs/inventory-reference.md and the roles' tno_tenants argument_specs from the schema
	$(PY) -m tnoctl.config.docgen
	$(PY) -m tnoctl.config.argspec

demo: install  ## lab up, deploy the lab communes (every tenant shape), prove mail + office
	$(TNOCTL) inventory validate
	$(TNOCTL) lab up
	$(TNOCTL) deploy --yes
	$(TNOCTL) lab smoke
	@echo; echo "Lab is up. Next: '$(TNOCTL) lab credentials', 'ssh -F \$$($(TNOCTL) lab ssh-config) mail1',"
	@echo "'$(TNOCTL) history', '$(TNOCTL) plan'. Stop it with 'make lab-down'."

lab-down:  ## stop the lab and remove everything it created
	$(TNOCTL) lab down

# The split-vault scale variant, measured on a shared 2-core machine: generating its 35,000 encrypted
# tenant files once ~4.5 min (kept in bench/out/), then each run 8.5-13 min, most of it the cold
# validation (every tenant file checked and every vault file decrypted once to learn its names).
bench: install  ## offline benchmarks (print ratios side by side); lab ones: bench-lab
	$(PY) bench/validate.py
	$(PY) bench/scale.py --tenants 35000
	$(PY) bench/scale.py --tenants 35000 --hosts 50 --vault-layout split
	$(PY) bench/exporter.py

bench-lab: install  ## lab benchmarks (root; after 'make demo'): deploy overhead, probes, backups, DR RTO, then upgrade waves
	$(PY) bench/deploy_overhead.py --fresh
	$(PY) bench/probes.py
	$(PY) bench/backup.py --inventory inventories/lab --tenant givors --mb 200
	$(PY) bench/backup.py --rto
	$(PY) bench/backup.py --rto --warm --mb 2048
	$(PY) bench/upgrade.py --hosts 6

collection: install  ## build the Ansible collection syndicat.tnoctl + EE inputs (build/), then the EE context (offline)
	$(PY) scripts/build_collection.py --out build
	$(VENV)/bin/ansible-builder create -f execution-environment.yml --context build/ee-context --output-filename Containerfile

clean:  ## remove the venv and caches (not the lab cache under /var/cache/tnoctl)
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
