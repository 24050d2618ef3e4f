"""Seconds per step of portrait-stylization's face terms, one configuration per row.

    OMP_NUM_THREADS=1 python bench/face_terms.py [--size 256] [--steps 20] [--repeats 2]

Each row runs ``--steps`` fp32 Adam steps at one scale (``--size``) on the astronaut x
The Starry Night from ``examples/`` and reads the stage's seconds from the run record
(face detection and network loading are outside the stage). Rows: crowson (no face
term), the previous default (the hinge on one fixed crop, weight 0.05), four jittered
views without the face style term, and today's default.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path
from typing import Any

from portrait_stylize.api import stylize

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CONFIGS: dict[str, tuple[str, dict[str, Any]]] = {
    "crowson": ("crowson", {}),
    "previous default (one fixed crop, weight 0.05)": (
        "portrait-stylization",
        {"face_weight": 0.05, "face_style_weight": 0.0, "face_views": 1, "face_jitter": 0.0},
    ),
    "four jittered views, no face style": ("portrait-stylization", {"face_style_weight": 0.0}),
    "default (four views + face style)": ("portrait-stylization", {}),
}


def seconds_per_step(method: str, overrides: dict[str, Any], size: int, steps: int) -> float:
    """Stage seconds / steps of one run at one scale."""
    schedule = {"iterations": steps, "initial_iterations": steps, "min_size": size}
    result = stylize(
        EXAMPLES / "astronaut.jpg",
        [EXAMPLES / "starry_night.jpg"],
        method,
        size=size,
        converge_tol=0.0,
        precision="fp32",
        **schedule,
        **overrides,
    )
    stage = result.record["stages"][-1]
    return stage["seconds"] / stage["iterations"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    rows = {}
    for name, (method, overrides) in CONFIGS.items():
        runs = [
            seconds_per_step(method, overrides, args.size, args.steps) for _ in range(args.repeats)
        ]
        rows[name] = statistics.median(runs)
    base = rows["previous default (one fixed crop, weight 0.05)"]
    print(f"{args.size} px, {args.steps} steps, median of {args.repeats}\n")
    print("| configuration | s / step | vs previous default |\n| --- | ---: | ---: |")
    for name, value in rows.items():
        print(f"| {name} | {value:.2f} | {value / base:.2f}x |")


if __name__ == "__main__":
    main()
