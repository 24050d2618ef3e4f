#!/usr/bin/env bash
# The main job end to end, offline: set up, fetch and verify the weights, then stylize
# the astronaut photograph in the style of The Starry Night (both in examples/), with the
# schedule of the README's figure (4-7 minutes on a 2-core CPU, as the README says).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/env.sh")"
out="${1:-$root/out}"
content="$root/examples/astronaut.jpg"
style="$root/examples/starry_night.jpg"
mkdir -p "$out"
"$venv/bin/portrait-stylize" weights pull
"$venv/bin/portrait-stylize" inspect "$content" -o "$out/astronaut.inspect.png"
"$venv/bin/portrait-stylize" "$content" "$style" \
  -o "$out/astronaut-portrait-painting.png" --method portrait-painting --size 256 \
  --initial-iterations 150 --iterations 100 --converge-tol 0
echo "results in $out"
