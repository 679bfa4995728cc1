# Every target works on a fresh clone with only Python 3.10+ and make.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Re-install only when the dependencies change: a stamp is newer than pyproject.toml.
# PRODUCT: structocr alone (make demo); STAMP: with the development tools (tests, lint).
PRODUCT := $(VENV)/.installed-product
STAMP  := $(VENV)/.installed

.PHONY: demo test lint install clean completions bench fuzz dist-check

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 10))' || \
		{ echo "make: Python 3.10 or newer is needed; set PYTHON=/path/to/python3.x" >&2; exit 2; }
	$(PYTHON) -m venv $(VENV)

$(PRODUCT): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $(PRODUCT)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP) $(PRODUCT)

install: $(STAMP) ## venv with structocr installed in editable mode

# The mock prints its base URL as its first line; the demo waits for it, then runs the CLI.
demo: $(PRODUCT) ## the product against the local mock
	@set -e; tmp=$$(mktemp -d); \
	$(BIN)/structocr mock --port 0 >"$$tmp/url" 2>"$$tmp/log" & pid=$$!; \
	trap 'kill $$pid 2>/dev/null; wait $$pid 2>/dev/null; rm -rf "$$tmp"' EXIT INT TERM; \
	for i in $$(seq 100); do [ -s "$$tmp/url" ] && break; sleep 0.05; done; \
	export STRUCTOCR_BASE_URL=$$(head -n 1 "$$tmp/url") STRUCTOCR_CONFIG="$$tmp/none.toml" \
		STRUCTOCR_HISTORY="$$tmp/history.sqlite3"; \
	echo "\$$ structocr mock --port 0   # local server at $$STRUCTOCR_BASE_URL"; echo; \
	echo "\$$ STRUCTOCR_API_KEY=demo structocr balance"; \
	STRUCTOCR_API_KEY=demo $(BIN)/structocr balance; echo; \
	echo "\$$ STRUCTOCR_API_KEY=demo structocr balance --json"; \
	STRUCTOCR_API_KEY=demo $(BIN)/structocr balance --json; echo; \
	echo "\$$ STRUCTOCR_API_KEY=demo-404 structocr balance; echo \"exit code \$$?\""; \
	code=0; STRUCTOCR_API_KEY=demo-404 $(BIN)/structocr balance || code=$$?; \
	echo "exit code $$code"; echo; \
	echo "\$$ STRUCTOCR_API_KEY=demo-low structocr balance -q --min-remaining 1000; echo \"exit code \$$?\""; \
	code=0; STRUCTOCR_API_KEY=demo-low $(BIN)/structocr balance -q --min-remaining 1000 || code=$$?; \
	echo "exit code $$code"

lint: $(STAMP)
	$(BIN)/ruff check structocr_cli tests
	$(BIN)/ruff format --check structocr_cli tests
	$(BIN)/mypy

test: lint ## lint, type-check and run the test suite
	$(BIN)/pytest

completions: $(STAMP) ## regenerate the committed shell completion scripts
	$(BIN)/structocr completion bash > completions/structocr.bash
	$(BIN)/structocr completion zsh > completions/_structocr
	$(BIN)/structocr completion fish > completions/structocr.fish
	$(BIN)/structocr completion powershell > completions/structocr.ps1

bench: $(STAMP) ## start-up, 200 keys, the exporter, hostile loads, history (not part of make test)
	$(BIN)/python tests/bench.py

# 10,000 examples per fuzz property, every fault in every format against the installed
# script (each within --timeout + 0.5 s), 200 killed-writer rounds, 50 mocks signalled as
# soon as they print their URL, 1,000 Ctrl-Cs during start-up. Takes several minutes; in
# one process (-n 0), so that hypothesis's statistics are printed.
fuzz: $(STAMP) ## the long reliability run (not part of make test)
	STRUCTOCR_TEST_FULL=1 HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -n 0 -p no:cacheprovider \
		--hypothesis-show-statistics tests/test_fuzz.py tests/test_faults.py \
		tests/test_config_cmd.py::test_writers_killed_mid_write_always_leave_a_parseable_file \
		tests/test_mock.py::test_a_signal_right_after_the_url_stops_the_mock_cleanly \
		tests/test_exit_codes.py::test_ctrl_c_at_any_moment_of_start_up_is_an_exit_130_or_before_our_code

# The package as users get it: build the sdist and wheel, check their metadata, install the
# wheel into a fresh environment and run the test suite from the unpacked sdist with its
# source directory removed, so that only the installed copy can be imported.
dist-check: $(STAMP) ## the built wheel passes the test suite (CI runs it)
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BIN)/python -m build --sdist --wheel --outdir "$$tmp/dist" . >/dev/null; \
	$(BIN)/python -m twine check --strict "$$tmp"/dist/*; \
	$(PYTHON) -m venv "$$tmp/venv"; \
	"$$tmp/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
		"$$(ls "$$tmp"/dist/*.whl)[dev]"; \
	tar -xzf "$$tmp"/dist/*.tar.gz -C "$$tmp"; src=$$(ls -d "$$tmp"/structocr_cli-*/); \
	rm -rf "$$src/structocr_cli"; \
	cd "$$src" && "$$tmp/venv/bin/python" -m pytest -q -p no:cacheprovider

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis dist build
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
