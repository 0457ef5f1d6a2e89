#!/usr/bin/env bash
# The one test entry point: the README's test command and .ci/run both run exactly this.
#
#   bash tools/test.sh [PYTEST ARGS...]      e.g. bash tools/test.sh --run-slow
#
# 1. Debian's chromium for the browser tests, only if no chromium is on PATH (as root, or
#    through sudo, after apt-get update). Where neither is possible the browser tests are
#    skipped with one line saying why; every other test still runs.
# 2. tools/install.sh test,docs,beam: .venv with the package, its test extra, the site's tools
#    and Apache Beam (the --runner beam tests).
# 3. ruff check (the lint, configured in pyproject.toml), mkdocs build --strict (the site,
#    failing on a broken link or a page left out of it), then pytest -q -n 2 (two workers;
#    loadgroup keeps a module marked xdist_group on one worker) with the arguments given.
# COVGAN_TEST_PLAN=1 prints the decisions and stops (the tests use it).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/as_root.sh

if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
    echo "browser: chromium found" >&2
elif why=$(apt_install chromium); then
    echo "browser: ${why:-installed chromium from Debian}" >&2
else
    # The browser tests read this and skip with the reason instead of failing.
    export COVGAN_SKIP_BROWSER="chromium is missing and could not be installed (${why})"
    echo "browser: the browser tests will be skipped: ${COVGAN_SKIP_BROWSER}" >&2
fi

bash tools/install.sh test,docs,beam
if [ -n "${COVGAN_TEST_PLAN:-}" ]; then
    echo "would run: ruff check . && mkdocs build --strict && pytest -q -n 2 --dist loadgroup $*"
    exit 0
fi
.venv/bin/ruff check .
# Into a folder of its own, so a build never leaves site/ half-written for `make docs-serve`.
site=$(mktemp -d)
trap 'rm -rf "$site"' EXIT
.venv/bin/mkdocs build --strict --quiet --site-dir "$site"
# Two workers: most of the suite's time is single-threaded (process starts, tracing).
.venv/bin/pytest -q -n 2 --dist loadgroup "$@"
