#!/usr/bin/env bash
# Makes .venv and installs covgan into it (editable), with an optional extra:
#
#   bash tools/install.sh          # what the demo needs
#   bash tools/install.sh test     # and pytest, pydicom, ruff
#   bash tools/install.sh docs     # and the documentation site's tools (mkdocs)
#   bash tools/install.sh beam     # and Apache Beam, for --runner beam
#   bash tools/install.sh test,docs,beam  # all three (tools/test.sh calls this)
#
# Debian's python3 ships without venv's ensurepip: where `python3 -m venv` cannot work,
# python3-venv is installed first (as root, or through sudo, after apt-get update).
# COVGAN_TEST_PLAN=1 prints the decisions and stops (the tests use it).
set -euo pipefail
cd "$(dirname "$0")/.."
. tools/as_root.sh

if ! python3 -c "import ensurepip, venv" >/dev/null 2>&1; then
    why=$(apt_install python3-venv) || {
        echo "install: python3 -m venv cannot work here and python3-venv cannot be installed" \
             "(${why})" >&2
        exit 1
    }
    echo "install: ${why:-installed python3-venv}" >&2
fi

target="."
[ $# -gt 0 ] && target=".[$1]"
if [ -n "${COVGAN_TEST_PLAN:-}" ]; then
    echo "would run: python3 -m venv .venv && pip install -e '${target}'"
    exit 0
fi
python3 -m venv .venv
.venv/bin/python -m pip install -q -e "${target}"
