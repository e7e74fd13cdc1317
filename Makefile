# Every target sets itself up: a fresh clone needs only Python 3.11, Java 17 and Maven.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test soak lint browser bench bench-replay catalogue up down clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: setup
	$(BIN)/rapport demo

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

# The customer-page tests drive a real headless Chromium (tests/integration/test_customer_page.py).
# Installed with apt-get when missing and we may (root, Debian/Ubuntu); otherwise say how and
# carry on: those tests then skip, saying what they need.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then \
		echo "browser: chromium and chromedriver found"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y chromium chromium-driver \
			|| echo "browser: apt-get could not install chromium; browser tests will skip"; \
	else \
		echo "browser: no chromium; as root run: apt-get install chromium chromium-driver" \
			"(browser tests will skip)"; \
	fi

test: lint
	-@$(MAKE) --no-print-directory browser
	$(BIN)/pytest -q -ra

# The fault soak: the worker SIGKILLed at random points RAPPORT_SOAK_KILLS times (50) while
# it drains, then every event accounted for (a short version runs in `make test`).
soak: setup
	RAPPORT_SOAK_KILLS=$${RAPPORT_SOAK_KILLS:-50} $(BIN)/pytest -s -q -p no:cacheprovider \
		tests/integration/test_faults.py -k sigkill

# The event catalogue is generated from schemas/; a unit test fails when it is stale.
catalogue: setup
	$(BIN)/rapport schemas catalogue docs/events.md

# Every figure against its physical reference: 1M events, 3 repeats, about half an hour
# on 2 cores (`--repeats 2` took 23 min);
# results, worker profile and logs go to bench/results/ (not committed).
bench: setup
	$(BIN)/rapport bench --out bench/results/latest.json

# The replay at scale: 10M events streamed into one topic, then drain-only consume (C),
# replay (G), COPY of G's rows (D) and the live worker over 1M records (E), in one run.
bench-replay: setup
	$(BIN)/rapport bench-replay --out bench/results/replay-latest.json


up: setup
	$(BIN)/rapport infra up

down: setup
	$(BIN)/rapport infra down

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
