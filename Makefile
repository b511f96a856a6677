# Newcomer entry points: `make demo` and `make test` (both run `make setup` first).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := openvswitch-switch iproute2 iputils-ping arping tcpdump iperf3 ethtool nftables

.PHONY: setup apt venv test unit integration demo bench clean
setup: apt venv

# Install only what is missing; needs root on a fresh machine.
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# The packaged OVS service is not used: each lab site runs its own daemons.

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt setup.py constraints-build.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# ryu 4.34 does not build with setuptools>=68 (get_script_args): constrain the build.
	PIP_CONSTRAINT=$(CURDIR)/constraints-build.txt $(PY) -m pip install -q -r requirements.txt
	PIP_CONSTRAINT=$(CURDIR)/constraints-build.txt $(PY) -m pip install -q --no-deps -e .
	# Ryu 4.34 on eventlet >= 0.30.3: see ipop_ryu/compat/eventlet_already_handled.py
	echo "import ipop_ryu.compat.eventlet_already_handled" \
	  > "$$($(PY) -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/zz_ipop_ryu_eventlet_compat.pth"
	$(VENV)/bin/ryu-manager --version
	touch $@

test: setup
	$(PY) -m pytest -ra tests

unit: setup
	$(PY) -m pytest -ra tests/unit

demo: setup
	$(VENV)/bin/ipop-ryu demo

bench: setup
	$(VENV)/bin/ipop-ryu bench

clean:
	rm -rf $(VENV) build *.egg-info
