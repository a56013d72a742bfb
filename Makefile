# One command each; `make serve` and `make test` install first when needed (see README).
VENV ?= .venv
BIN := $(VENV)/bin
PYTHON ?= python3

.PHONY: install serve test lint format typecheck bench-accuracy bench-speed

# The install stamp is rebuilt when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first, pinned: the CPU build; an unpinned torch would pull a multi-GB CUDA build.
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# The whole service on this machine with embedded defaults (SQLite, a local queue,
# a local object store under ./var): http://127.0.0.1:8000/docs
serve: install
	$(BIN)/ner serve

# The whole suite on real servers: PostgreSQL, Redis and an S3 server are started
# (and stopped) by scripts/services.sh under ./var/services.
test: install
	PATH="$(CURDIR)/$(BIN):$$PATH" scripts/test.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: install
	$(BIN)/mypy shared api worker

bench-accuracy: install
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/python benchmarks/accuracy.py conll

bench-speed: install
	$(BIN)/python benchmarks/speed.py --model $(MODEL)
