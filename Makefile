# CNN Studio: `make run` serves the app, `make test` runs the whole suite. Both install what they need.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PORT   ?= 8501
STAMP  := $(VENV)/.installed-python
NODE_STAMP := node_modules/.installed
# The interface's translations: each .po under version control is compiled to the .mo the app reads.
CATALOGS := $(wildcard locales/*/LC_MESSAGES/messages.po)
COMPILED := $(CATALOGS:.po=.mo)
# Playwright cannot download its own browser here: the browser tests drive Debian's Chromium.
CHROMIUM := /usr/bin/chromium
# The replica tests put Debian's nginx in front of two servers, with deploy/nginx.conf.
NGINX := /usr/sbin/nginx
# The Chinese interface's screenshots and browser tests need a CJK font (Debian's WenQuanYi Zen Hei).
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc

.PHONY: install run test lint bench clean

install: $(STAMP) $(NODE_STAMP) $(COMPILED)

$(STAMP): requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

locales/%/LC_MESSAGES/messages.mo: locales/%/LC_MESSAGES/messages.po $(STAMP)
	$(BIN)/pybabel compile -i $< -o $@

# The TF.js runtime: tests run exported models with it in Node, and the web demo ships its tf.min.js.
$(NODE_STAMP): package.json package-lock.json
	command -v npm >/dev/null || (apt-get update && apt-get install -y nodejs npm)
	npm ci --no-audit --no-fund
	touch $@

$(CHROMIUM):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium fonts-dejavu-core

$(CJK_FONT):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends fonts-wqy-zenhei

$(NGINX):
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx

run: install
	$(BIN)/streamlit run streamlit_app.py --server.port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: install $(CHROMIUM) $(CJK_FONT) $(NGINX) lint
	$(BIN)/python -m pytest

bench: install $(CHROMIUM) $(CJK_FONT)
	$(BIN)/python benchmarks/bench_data.py
	$(BIN)/python benchmarks/bench_training.py
	$(BIN)/python benchmarks/bench_evaluation.py
	$(BIN)/python benchmarks/bench_distributed.py
	$(BIN)/python benchmarks/bench_viewers.py
	$(BIN)/python benchmarks/bench_serve.py
	$(BIN)/python benchmarks/bench_ui.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
