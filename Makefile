# CNN Studio: `make run` serves the app, `make test` runs the whole suite. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
STAMP  := $(VENV)/.installed-python
NODE_STAMP := node_modules/.installed
# Playwright cannot download its own browser here: the browser tests drive Debian's Chromium.
CHROMIUM := /usr/bin/chromium
# The replica tests put Debian's nginx in front of two servers, with deploy/nginx.conf.
NGINX := /usr/sbin/nginx

.PHONY: install run test lint bench clean

install: $(STAMP) $(NODE_STAMP)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

# The TF.js runtime: tests run exported models with it in Node, and the web demo ships its tf.min.js.
$(NODE_STAMP): package.json package-lock.json
	command -v npm >/dev/null || (apt-get update && apt-get install -y nodejs npm)
	npm ci --no-audit --no-fund
	touch $@

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core

$(NGINX):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx

run: install
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install $(CHROMIUM) $(NGINX) lint
	$(BIN)/python -m pytest

bench: install $(CHROMIUM)
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_evaluation.py
	$(BIN)/python benchmarks/bench_distributed.py
	$(BIN)/python benchmarks/bench_viewers.py
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_ui.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
