# The two commands of the README: `make demo` and `make test`. Both create .venv and install the
# pinned dependencies (requirements.lock) first, so they work on a fresh machine.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO_OUT ?= demo

.PHONY: demo test lint typecheck unit bench lock clean chromium postgresql mosquitto vendor

$(STAMP): pyproject.toml requirements.lock setup.py src/cityos/_pbf.c
	@$(PY) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "cityos needs Python >= 3.11; set PY=python3.11")'
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/cityos import --demo helsinki --out $(DEMO_OUT)/helsinki --force
	$(BIN)/cityos info $(DEMO_OUT)/helsinki
	$(BIN)/cityos checkup $(DEMO_OUT)/helsinki --out $(DEMO_OUT)/helsinki-checkup --force
	$(BIN)/cityos renew $(DEMO_OUT)/helsinki-checkup --force
	$(BIN)/cityos report $(DEMO_OUT)/helsinki-checkup --out $(DEMO_OUT)/helsinki-report.html --lang en --force
	$(BIN)/cityos site $(DEMO_OUT)/helsinki --category supermarket --add 3 --radius 300 --candidates stock --out $(DEMO_OUT)/helsinki-sites --force
	$(BIN)/cityos db upgrade --db sqlite:///$(abspath $(DEMO_OUT))/helsinki.ops.sqlite -q
	$(BIN)/cityos simulate $(DEMO_OUT)/helsinki --db sqlite:///$(abspath $(DEMO_OUT))/helsinki.ops.sqlite --days 30 --seed 1 --timezone Europe/Helsinki --force
	@echo "bundle: $(DEMO_OUT)/helsinki   results: $(DEMO_OUT)/helsinki-checkup   report: $(DEMO_OUT)/helsinki-report.html   siting: $(DEMO_OUT)/helsinki-sites"
	@echo "the dashboard and the hotline: $(BIN)/cityos serve $(DEMO_OUT)/helsinki --results $(DEMO_OUT)/helsinki-checkup   then open http://127.0.0.1:8311/  (README: One map for the city, Run the hotline)"
	@echo "keep the city living meanwhile: $(BIN)/cityos simulate $(DEMO_OUT)/helsinki --db sqlite:///$(abspath $(DEMO_OUT))/helsinki.ops.sqlite --days 0 --live"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# the report's and the dashboard's browser tests drive Debian's Chromium (no browser download at
# run time), with a CJK font for the Chinese labels: installed here as root (or with password-less
# sudo); otherwise make says how, instead of failing later
APT := DEBIAN_FRONTEND=noninteractive apt-get
BROWSER_PKGS := chromium fonts-wqy-microhei
chromium:
	@{ command -v chromium && [ -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc ]; } >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ]; then $(APT) update -qq && $(APT) install -y -qq $(BROWSER_PKGS); \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  sudo $(APT) update -qq && sudo $(APT) install -y -qq $(BROWSER_PKGS); \
	else echo "make: the browser tests drive Debian's Chromium with a CJK font, which are not installed and need root to install: run 'sudo apt-get install $(BROWSER_PKGS)' once, then 'make test' again" >&2; exit 2; fi

# MapLibre GL JS (BSD-3-Clause) and uPlot (MIT), vendored into the package from npm, each with
# its licence beside it: run after changing a version, then commit src/cityos/web/static/vendor
MAPLIBRE := 5.24.1
UPLOT := 1.6.32
VENDOR := src/cityos/web/static/vendor
vendor:
	rm -rf build/npm && mkdir -p build/npm/maplibre build/npm/uplot
	cd build/npm/maplibre && npm pack --silent maplibre-gl@$(MAPLIBRE) >/dev/null && tar xzf maplibre-gl-$(MAPLIBRE).tgz
	cp build/npm/maplibre/package/dist/maplibre-gl.js build/npm/maplibre/package/dist/maplibre-gl.css build/npm/maplibre/package/LICENSE.txt $(VENDOR)/maplibre-gl/
	echo "maplibre-gl $(MAPLIBRE) (npm), dist/maplibre-gl.js and .css, BSD-3-Clause (LICENSE.txt)" > $(VENDOR)/maplibre-gl/VERSION
	cd build/npm/uplot && npm pack --silent uplot@$(UPLOT) >/dev/null && tar xzf uplot-$(UPLOT).tgz
	cp build/npm/uplot/package/dist/uPlot.iife.min.js build/npm/uplot/package/dist/uPlot.min.css build/npm/uplot/package/LICENSE $(VENDOR)/uplot/
	echo "uplot $(UPLOT) (npm), dist/uPlot.iife.min.js and dist/uPlot.min.css, MIT (LICENSE)" > $(VENDOR)/uplot/VERSION

# the store tests start a throwaway cluster of Debian's PostgreSQL on a loopback port
postgresql:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || \
	if [ "$$(id -u)" = 0 ]; then $(APT) update -qq && $(APT) install -y -qq postgresql; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  sudo $(APT) update -qq && sudo $(APT) install -y -qq postgresql; \
	else echo "make: the store tests run a throwaway PostgreSQL, which is not installed and needs root to install: run 'sudo apt-get install postgresql' once, then 'make test' again" >&2; exit 2; fi

mosquitto:
	@command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || \
	if [ "$$(id -u)" = 0 ]; then $(APT) update -qq && $(APT) install -y -qq mosquitto mosquitto-clients; \
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then \
	  sudo $(APT) update -qq && sudo $(APT) install -y -qq mosquitto mosquitto-clients; \
	else echo "make: the MQTT tests run a throwaway mosquitto, which is not installed and needs root to install: run 'sudo apt-get install mosquitto' once, then 'make test' again" >&2; exit 2; fi

unit: $(STAMP) chromium postgresql mosquitto
	$(BIN)/pytest

test: lint typecheck unit

bench: $(STAMP) chromium
	$(BIN)/python -m pip install -q -c requirements.lock -e '.[dev,bench]'
	$(BIN)/python benchmarks/bench_import.py
	$(BIN)/python benchmarks/bench_access.py
	$(BIN)/python benchmarks/bench_checkup.py
	$(BIN)/python benchmarks/bench_siting.py
	$(BIN)/python benchmarks/bench_pipeline.py
	$(BIN)/python benchmarks/bench_batch.py

# refresh the pinned versions after changing dependencies in pyproject.toml
lock: $(STAMP)
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^cityos' > requirements.lock

clean:
	rm -rf $(VENV) $(DEMO_OUT) .mypy_cache .ruff_cache .pytest_cache
