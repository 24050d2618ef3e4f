"""Seconds per iteration and peak memory of the ``gatys`` method, fp32 and bf16.

Each configuration runs in its own process so its peak resident memory is its own.
Prints a Markdown table with ratios against fp32 at the same size.

    python bench/bench_gatys.py [--sizes 256 512] [--steps 10] [--warmup 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

import numpy as np


def measure(size: int, precision: str, steps: int, warmup: int) -> dict:
    """Run gatys for warmup + steps iterations on the astronaut photo; time each step."""
    import torch
    from skimage import data

    from portrait_stylize import stylize

    stamps: list[float] = []
    content = np.asarray(data.astronaut())
    style = np.asarray(data.immunohistochemistry())
    stylize(
        content,
        style,
        "gatys",
        size=size,
        iterations=warmup + steps,
        precision=precision,
        callbacks=[lambda step: stamps.append(time.perf_counter())],
    )
    per_step = np.diff(stamps)[warmup - 1 :] if warmup else np.diff(stamps)
    return {
        "size": size,
        "precision": precision,
        "seconds_per_iteration": float(statistics.median(per_step)),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        size, precision = int(args.one[0]), args.one[1]
        print(json.dumps(measure(size, precision, args.steps, args.warmup)))
        return
    rows = []
    for size in args.sizes:
        for precision in args.precisions:
            command = [sys.executable, __file__, "--one", str(size), precision]
            command += ["--steps", str(args.steps), "--warmup", str(args.warmup)]
            done = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print("| size | precision | s / iteration | vs fp32 | 1000 iterations | peak RSS (MB) |")
    print("| ---: | --- | ---: | ---: | ---: | ---: |")
    for row in rows:
        base = next(r for r in rows if r["size"] == row["size"] and r["precision"] == "fp32")[
            "seconds_per_iteration"
        ]
        seconds = row["seconds_per_iteration"]
        print(
            f"| {row['size']} | {row['precision']} | {seconds:.3f} | {base / seconds:.2f}x "
            f"| {seconds * 1000 / 60:.1f} min | {row['peak_rss_mb']:.0f} |"
        )
    print(
        f"\n{rows[0]['threads']} torch threads; median of {args.steps} steps after {args.warmup}."
    )


if __name__ == "__main__":
    main()
