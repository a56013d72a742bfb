# One command each. `make install` is what a fresh machine runs first (see README).
PY ?= .venv/bin/python
VENV ?= .venv

.PHONY: install serve test test-fast lint typecheck services-start services-stop bench-accuracy bench-speed

install:
	test -d $(VENV) || python3.11 -m venv $(VENV) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install --upgrade pip
	# torch first, pinned: the CPU build; anything unpinned would pull a multi-GB CUDA build.
	$(VENV)/bin/pip install torch==2.13.0
	$(VENV)/bin/pip install -e '.[dev]'

serve:
	$(VENV)/bin/ner serve

# The whole suite on real servers: PostgreSQL, Redis and an S3 server are started
# (and stopped) by scripts/services.sh under ./var/services.
test:
	scripts/test.sh

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck:
	$(VENV)/bin/mypy shared api worker
