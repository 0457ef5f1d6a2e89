# Developer shortcuts; each is one command you can also type by hand.
.PHONY: test test-slow lint bench

test:
	bash tools/test.sh

test-slow:
	bash tools/test.sh --run-slow

lint:
	.venv/bin/ruff check .

bench:
	.venv/bin/python tools/bench.py
