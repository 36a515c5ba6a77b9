# savepoint.virt: two commands for a fresh machine (root, Debian 12/13):
#   make demo   a guarded change that fails and is reverted, on a real local libvirt guest
#   make test   the whole suite: installs and starts everything it needs, stops it after
# For your own loop: make test-fast (unit + libvirt test driver, seconds).

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REAL_SERVICES := qemu or vmware or openstack or ee or browser or playbook
# The tiny real Linux guest (kernel, initramfs, keys) is built here by the demo and by the tests.
export LINUX_GUEST_CACHE ?= $(CURDIR)/.cache/linux-guest

.PHONY: demo test test-fast test-qemu test-vmware test-openstack test-ee ee-context lint sanity matrix docs bench clean

$(STAMP): requirements.txt requirements-libvirt.txt requirements-vmware.txt requirements-openstack.txt tests/requirements.txt
	bash tests/services/libvirt/up.sh install
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r tests/requirements.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) tests/services/linux_guest.py build
	$(PY) tests/scripts/demo.py

test-fast: $(STAMP)
	@echo "test-fast: unit tests and the libvirt test driver only; real services (QEMU, vcsim, OpenStack, Chromium) run in 'make test'"
	$(PY) -m pytest -q -m "not ($(REAL_SERVICES))"

test-qemu: $(STAMP)
	$(PY) -m pytest -q -m qemu

test-vmware: $(STAMP)
	$(PY) -m pytest -q -m vmware

test-openstack: $(STAMP)
	$(PY) -m pytest -q -m openstack

# ansible-builder contexts of docs/awx/ee/*.yml in build/ee/<name>/ (create + introspect, offline)
ee-context: $(STAMP)
	$(PY) tests/ee/ee_context.py build/ee

test-ee: $(STAMP)
	$(PY) -m pytest -q tests/ee

lint: $(STAMP)
	bash tests/scripts/lint.sh

sanity: $(STAMP)
	bash tests/scripts/sanity.sh

# The fast set and a module smoke playbook on the lowest (requires_ansible) and the
# newest ansible-core, each in its own venv under .cache/matrix/ (built on first use).
matrix: $(STAMP)
	bash tests/scripts/matrix.sh

# The HTML docs site (antsibull-docs, offline) in build/docs/site/build/html/; first
# regenerates docs/docsite/rst/ from docs/*.md (commit what changed there).
docs: $(STAMP)
	$(PY) tests/scripts/docs.py

# Everything; pytest prints its 40 slowest steps (to keep make test within its budget), then its
# summary line, the last thing printed.
test: $(STAMP)
	bash tests/scripts/lint.sh
	bash tests/scripts/sanity.sh
	$(PY) tests/scripts/docs.py
	bash tests/scripts/matrix.sh
	$(PY) -m pytest -q -p no:cacheprovider --durations=40

bench: $(STAMP)
	$(PY) benchmarks/libvirt_overhead.py
	$(PY) benchmarks/guard_overhead.py

clean:
	rm -rf build dist tests/output .pytest_cache
