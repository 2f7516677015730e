# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DATA_DIR ?= data
STAMP := $(VENV)/.installed

.PHONY: run serve demo demo-data test lint typecheck pytest bench schema clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(STAMP)

# Serve the demo on the embedded SQLite default; builds the demo data the first time.
# `make run PORT=9000 DATA_DIR=/elsewhere`; without PORT, DSA110_PORT or 8000.
run: demo-data
	$(BIN)/dsa110-graph serve --data-dir $(DATA_DIR) $(if $(PORT),--port $(PORT))

demo-data: $(STAMP)
	test -f $(DATA_DIR)/dsa110.sqlite3 || $(BIN)/dsa110-graph demo --data-dir $(DATA_DIR)

demo: $(STAMP)
	$(BIN)/dsa110-graph demo --data-dir $(DATA_DIR) --force

test: lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy dsa110 loaders resolvers schema compat_rest server bench

# One pytest worker per core (each test makes its own databases and bus namespace); a file's
# tests stay on one worker so its module fixtures are built once. PYTEST_WORKERS=0 runs serially.
PYTEST_WORKERS ?= auto
pytest: $(STAMP)
	$(BIN)/pytest -q -n $(PYTEST_WORKERS) --dist loadfile

schema: $(STAMP)
	$(BIN)/dsa110-graph export-schema > schema.graphql

# Every bench, each run as a module (`python -m bench.<name>`) so `bench.common` imports;
# `make bench-graph` runs one. Each prints `name key=value ...` lines.
BENCHES := graph compat cone ese_injection exports fanout load
BENCH_ARGS_graph = --data-dir $(DATA_DIR)
BENCH_ARGS_compat = --data-dir $(DATA_DIR)

bench: $(addprefix bench-,$(BENCHES))

bench-graph bench-compat: demo-data

bench-%: $(STAMP)
	$(BIN)/python -m bench.$* $(BENCH_ARGS_$*)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
