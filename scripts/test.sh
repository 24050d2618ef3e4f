#!/usr/bin/env bash
# The test command: set up the environment, check formatting and lint, run the tests.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/env.sh")"
cd "$root"
"$venv/bin/ruff" format --check .
"$venv/bin/ruff" check .
"$venv/bin/python" -m pytest -q "$@"
