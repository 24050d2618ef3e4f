#!/usr/bin/env bash
# The main job end to end, offline: set up, fetch and verify the weights, then paint the
# astronaut photograph in the style of The Starry Night (both in examples/) at the
# defaults, beside the feed-forward network's one-second picture (README: a few minutes
# on a 2-core CPU; the first run also builds the environment and times the machine).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$("$root/scripts/env.sh")"
out="${1:-$root/out}"
content="$root/examples/astronaut.jpg"
style="$root/examples/starry_night.jpg"
mkdir -p "$out"
"$venv/bin/portrait-stylize" weights pull
"$venv/bin/portrait-stylize" inspect "$content" -o "$out/astronaut.inspect.png"
"$venv/bin/portrait-stylize" "$content" "$style" -o "$out/astronaut-instant.png" --method instant
"$venv/bin/portrait-stylize" "$content" "$style" -o "$out/astronaut-painted.png"
echo "results in $out"
