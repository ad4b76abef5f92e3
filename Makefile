# suitkaise_nb developer commands. Everything installs into .venv from nothing.
#   make lab    venv + package + JupyterLab, opens notebooks/
#   make demo   runs notebooks/quickstart.ipynb headless (executed copy + HTML in notebooks/executed/)
#   make docs   builds the documentation site into site/ (mkdocs, strict: a warning fails)
#   make test   venv + test extras + system services, then lint and the whole suite
#   make lint   ruff check, ruff format --check, mypy, lint-imports (the layers)
#   make bench  the side-by-side benchmarks (bench/README.md)

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
PYTEST_ARGS ?=
DEMO_OUT ?= notebooks/executed
LAB_ARGS ?=

.PHONY: lab demo docs test lint format system-deps bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.lab: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[lab]'
	touch $@

$(VENV)/.test: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[test,lab,dask,docs]'
	touch $@

# as root (containers, CI-like machines) JupyterLab needs --allow-root; it prints the URL to open
lab: $(VENV)/.lab
	@echo "starting JupyterLab on notebooks/ (open the http://127.0.0.1:... URL it prints below)"
	$(VENV)/bin/jupyter lab notebooks/ $$( [ "$$(id -u)" = 0 ] && echo --allow-root ) $(LAB_ARGS)

demo: $(VENV)/.lab
	mkdir -p $(DEMO_OUT)
	$(VENV)/bin/jupyter nbconvert --to notebook --execute notebooks/quickstart.ipynb \
		--output-dir $(DEMO_OUT) --output quickstart.ipynb
	# the HTML drops the saved widget state, so the views render as their static HTML (no CDN)
	$(VENV)/bin/jupyter nbconvert --to html $(DEMO_OUT)/quickstart.ipynb \
		--ClearMetadataPreprocessor.enabled=True --ClearMetadataPreprocessor.clear_cell_metadata=False \
		--output-dir $(DEMO_OUT)
	@echo "executed notebook: $(DEMO_OUT)/quickstart.ipynb"
	@echo "HTML export:       $(DEMO_OUT)/quickstart.html"

$(VENV)/.docs: pyproject.toml | $(PY)
	$(PIP) install -q -e '.[docs]'
	touch $@

docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict
	@echo "site: site/index.html"

system-deps:
	bash tests/install_services.sh

lint: $(VENV)/.test
	$(VENV)/bin/ruff check suitkaise_nb tests bench notebooks
	$(VENV)/bin/ruff format --check suitkaise_nb tests bench
	$(VENV)/bin/mypy suitkaise_nb
	$(VENV)/bin/lint-imports

format: $(VENV)/.test
	$(VENV)/bin/ruff format suitkaise_nb tests bench
	$(VENV)/bin/ruff check --fix suitkaise_nb tests bench

test: $(VENV)/.test system-deps lint
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.test
	$(PY) bench/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache notebooks/executed site
