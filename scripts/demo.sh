#!/usr/bin/env bash
# The main job end to end, offline: set up, fetch and verify the weights, then stylize
# scikit-image's astronaut photograph in the style of one of its sample images.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/env.sh")"
out="${1:-$root/out}"
mkdir -p "$out"
"$venv/bin/python" "$root/scripts/sample_images.py" "$out"
"$venv/bin/portrait-stylize" weights pull
"$venv/bin/portrait-stylize" inspect "$out/astronaut.png" -o "$out/astronaut.inspect.png"
"$venv/bin/portrait-stylize" "$out/astronaut.png" "$out/style.png" \
  -o "$out/astronaut-portrait-stylization.png" --method portrait-stylization --size 256
echo "results in $out"
