# Every target creates .venv and installs the project when missing, so each works on a fresh clone.
# Installs are pinned by constraints.txt, so a new release of a dev tool cannot break the build.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PIP_INSTALL = -m pip install --quiet --disable-pip-version-check -c constraints.txt -e '.[dev]'

.PHONY: demo test test-fast test-oldest lint typecheck pytest bench mutate clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python $(PIP_INSTALL)
	touch $(STAMP)

demo: $(STAMP)
	CLORE_DEMO=1 ./scripts/demo.sh

test: $(STAMP) lint typecheck pytest

# The suite without the tests marked slow (real processes, real sockets, fuzzing).
test-fast: $(STAMP)
	$(BIN)/pytest -q -m "not slow"

# pytest on the oldest supported Python (3.10), in its own venv; skipped with a message
# when no Python 3.10 is on the machine. CI runs it after `make test`. It runs the tests
# not marked slow (every module is still imported and exercised on 3.10); the slow ones
# (real processes, SSH, Redis) run in `make test`, which keeps CI under 30 minutes.
test-oldest:
	@py="$$(./scripts/oldest-python.sh)"; \
	if [ -z "$$py" ]; then echo "test-oldest: no Python 3.10 on this machine; skipped"; exit 0; fi; \
	test -x .venv310/bin/python || "$$py" -m venv .venv310; \
	.venv310/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip; \
	.venv310/bin/python $(PIP_INSTALL); \
	.venv310/bin/python -m pytest -q -p no:cacheprovider -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/python scripts/check_imports.py

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

# Mutation testing of the code that spends money (slow; not part of CI). See scripts/mutate.sh.
mutate: $(STAMP)
	./scripts/mutate.sh

clean:
	rm -rf $(VENV) .venv310 .pytest_cache .mypy_cache .ruff_cache
