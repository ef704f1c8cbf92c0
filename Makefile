# The two set-up commands (README): `make demo` runs the main job, `make test` runs the tests.
# Both create the virtual environment on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
export MLFLOW_DISABLE_TELEMETRY := true
export DO_NOT_TRACK := true
export AIRFLOW__USAGE_DATA_COLLECTION__ENABLED := False
export SCARF_ANALYTICS := false
export DVC_NO_ANALYTICS := 1

.PHONY: install demo test test-fast lint bench bundle
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet -e ".[hub,orchestration,desktop,dev,installer]"
	touch $@

demo: install
	$(VENV)/bin/pneumo-hub --home .pneumo-demo demo

test: install
	$(PY) -m pytest -q

# The quick subset (no training, no servers): seconds, for the edit-test loop.
test-fast: install
	$(PY) -m pytest -q -m "not slow"

# ruff, configured in pyproject.toml: lint rules and the formatter's check (.ci/run runs this).
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

bench: install
	$(PY) bench/train_overhead.py
	$(PY) bench/desktop_app.py

# The desktop bundle for hospital IT (docs/install.md): dist/pneumoscan/ and, on Linux, its .tar.gz.
# The model is the feed's champion: FEED (a feed folder, default the demo's), or FEED_URL with ROOT.
# Built from its own venv with only the desktop and installer extras: no torch, MLflow or Airflow
# to install on a build machine that never runs the hub, and none for PyInstaller to find.
FEED ?= .pneumo-demo/feed
BUNDLE_VENV ?= .venv-bundle
$(BUNDLE_VENV)/.installed: pyproject.toml
	python3.11 -m venv $(BUNDLE_VENV) || python3 -m venv $(BUNDLE_VENV)
	$(BUNDLE_VENV)/bin/python -m pip install --quiet -e ".[desktop,installer]"
	touch $@

bundle: $(BUNDLE_VENV)/.installed
	$(BUNDLE_VENV)/bin/python installer/build.py $(if $(FEED_URL),--feed-url $(FEED_URL) --root $(ROOT),--feed $(FEED))
