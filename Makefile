# Newcomer entry points: `make demo` and `make test` (both run `make setup` first).
# FRAMEWORK picks the OpenFlow framework of .venv: ryu, os-ken (4.x) or os-ken3; by default the
# one .venv already holds (ryu for a new one), so `make test` keeps what `make setup FRAMEWORK=`
# chose.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
FRAMEWORK ?= $(or $(firstword $(patsubst $(VENV)/.installed-%,%,$(wildcard $(VENV)/.installed-*))),ryu)
FRAMEWORKS := ryu os-ken os-ken3
ifeq ($(filter $(FRAMEWORK),$(FRAMEWORKS)),)
$(error FRAMEWORK=$(FRAMEWORK): expected one of $(FRAMEWORKS))
endif
PY := $(VENV)/bin/python
APT_PACKAGES := openvswitch-switch iproute2 iputils-ping arping tcpdump iperf3 ethtool nftables \
                dnsmasq-base lxc busybox-static \
                wireguard-go wireguard-tools
# ryu 4.34 does not build with setuptools>=68 (get_script_args): every install is constrained.
PIP := PIP_CONSTRAINT=$(CURDIR)/constraints-build.txt $(PY) -m pip install -q

.PHONY: setup apt venv test unit integration demo bench test-matrix wheel docs clean
setup: apt venv

# Install only what is missing; needs root on a fresh machine.
apt:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi
	@# The packaged OVS service is not used: each lab site runs its own daemons.

venv: $(VENV)/.installed-$(FRAMEWORK)

# A venv holds one framework: asking for another rebuilds it.
$(VENV)/.installed-$(FRAMEWORK): requirements/base.txt requirements/$(FRAMEWORK).txt \
		requirements/bench.txt requirements/docs.txt setup.py bench/setup.py constraints-build.txt
	@if ls $(VENV)/.installed-* 2>/dev/null | grep -qv "/.installed-$(FRAMEWORK)$$"; then \
	  echo "$(VENV) holds another framework: rebuilding it for $(FRAMEWORK)"; rm -rf $(VENV); fi
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) -r requirements/$(FRAMEWORK).txt -r requirements/bench.txt -r requirements/docs.txt
	# editable; the package's .pth applies the eventlet shim Ryu 4.34 needs (see setup.py)
	$(PIP) --no-deps -e .
	# the bench, a package of its own on top (bench/setup.py): `make bench`, its tests
	$(PIP) --no-deps -e ./bench
	$(VENV)/bin/ipop-ryu controller --version
	touch $@

test: setup
	$(PY) -m pytest -ra tests

unit: setup
	$(PY) -m pytest -ra tests/unit

# Unit tests under every framework on Python 3.11, 3.12 and 3.13 (.venv-matrix/<py>-<fw>/).
test-matrix:
	bash packaging/test-matrix.sh

# build/ first: setuptools packs whatever an earlier build left there (modules since moved)
wheel:
	rm -rf build bench/build
	PIP_CONSTRAINT=$(CURDIR)/constraints-build.txt $(PYTHON) -m pip wheel -q --no-deps -w dist . ./bench

demo: setup
	$(VENV)/bin/ipop-ryu demo

bench: setup
	$(VENV)/bin/ipop-ryu bench

# docs/reference/ regenerated from the code, then HTML (build/docs/html) and the man page, both
# with warnings as errors; the man page is committed as packaging/ipop-ryu.8 (installed by setup.py).
docs: setup
	$(PY) docs/generate.py
	$(PY) -m sphinx -q -W -b html docs build/docs/html
	$(PY) -m sphinx -q -W -b man docs build/docs/man
	cp build/docs/man/ipop-ryu.8 packaging/ipop-ryu.8

clean:
	rm -rf $(VENV) .venv-matrix build dist *.egg-info bench/build bench/*.egg-info
