# Developer shortcuts; each is one command you can also type by hand.
.PHONY: test test-slow lint bench docs docs-serve

test:
	bash tools/test.sh

test-slow:
	bash tools/test.sh --run-slow

lint:
	.venv/bin/ruff check .

bench:
	.venv/bin/python tools/bench.py

docs:
	bash tools/install.sh docs && .venv/bin/mkdocs build --strict

docs-serve:
	bash tools/install.sh docs && .venv/bin/mkdocs serve --dev-addr 127.0.0.1:8000
