#!/usr/bin/env bash
# Create (once) and print the path of a virtual environment with the project's pinned
# dependencies. It lives outside the checkout, keyed by the hash of requirements/*.txt,
# so fresh clones reuse it and it is rebuilt only when the requirements change.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
key="$(cat "$root"/requirements/torch.txt "$root"/requirements/ci.txt | sha256sum | cut -c1-16)"
venv="${PORTRAIT_STYLIZE_VENVS:-$HOME/.cache/portrait-stylize/venvs}/$key"
if [ ! -f "$venv/.complete" ]; then
  echo "setting up $venv (first time: installs PyTorch, a few minutes)" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/requirements/torch.txt" >&2
  "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/requirements/ci.txt" >&2
  touch "$venv/.complete"
fi
"$venv/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation -e "$root" >&2
echo "$venv"
