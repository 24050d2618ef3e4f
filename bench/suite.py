"""Speed and memory of every method: seconds per iteration, the VGG floor, GFLOP/s, scaling.

One entry point for the performance tables of ``docs/performance.md``. For each size
(long side), precision and method it runs a few optimisation steps of the method at that
single scale in a fresh process (so peak resident memory is that configuration's own)
and times each step; beside it, the floor of the method's backbone: the bare VGG forward +
backward to the image, to relu5_1 (the deepest layer every method reads), at the same
size and precision (the Gatys family runs on the original VGG-19, crowson and
portrait-stylization on HED's VGG-16).
Prints Markdown tables and writes every row to a CSV file.

    python bench/suite.py [--sizes 256 512 1024 2048] [--methods gatys crowson ...]
                          [--precisions fp32 bf16] [--steps 3] [--csv out/bench/suite.csv]

gatys-plus has exactly gatys' cost (only a weight differs) and is not timed separately.
The total time of a method's default schedule is estimated from the fitted power law of
seconds per iteration against pixel count (multi-scale methods run 128 px → size).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

METHODS = ("gatys", "portrait-aware", "crowson", "portrait-stylization", "portrait-painting")
FLOOR_LAYER = "relu5_1"


def _images() -> tuple[np.ndarray, np.ndarray]:
    """Content (a portrait with one face) and style, both (H, W, 3) uint8 from scikit-image."""
    from skimage import data

    return np.asarray(data.astronaut()), np.asarray(data.immunohistochemistry())


def backbone_of(method: str) -> str:
    """The backbone ``method`` runs on at its defaults."""
    from portrait_stylize.methods import resolve_settings

    return resolve_settings(method, {}).backbone


def floor_kind(backbone: str) -> str:
    """The row kind of a backbone's floor, e.g. ``floor:vgg16-hed``."""
    return f"floor:{backbone}"


def conv_flops(size: int, backbone: str) -> float:
    """Forward FLOPs of the backbone to relu5_1 on a size x size image (2 per multiply-add)."""
    from torch import nn

    from portrait_stylize.features import BACKBONES
    from portrait_stylize.nets.vgg import VGGTrunk

    trunk = VGGTrunk(BACKBONES[backbone].arch)
    flops, side = 0.0, size
    for name in trunk.names[: trunk.names.index(FLOOR_LAYER) + 1]:
        module = trunk.layers[name]
        if isinstance(module, nn.Conv2d):
            flops += 2 * module.in_channels * module.out_channels * 9 * side * side
        elif name.startswith("pool"):
            side //= 2
    return flops


def measure_floor(backbone: str, size: int, precision: str, steps: int) -> dict[str, Any]:
    """Median seconds of the backbone's forward + backward to the image."""
    import torch
    from levers import seconds as median_seconds  # the sibling script's timing loop

    from portrait_stylize.features import build_extractor
    from portrait_stylize.losses import Objective

    objective = Objective(build_extractor(backbone), [], autocast=precision == "bf16")
    image = torch.rand(1, 3, size, size)
    seconds = median_seconds(
        lambda pixels: objective.features(pixels, [FLOOR_LAYER])[FLOOR_LAYER].sum(),
        image,
        steps,
        warmup=1,
    )
    # the backward pass to the input costs about one more forward pass (weights are frozen)
    gflops = 2 * conv_flops(size, backbone) / seconds / 1e9
    return {"seconds_per_iteration": seconds, "gflops": gflops}


def measure_method(method: str, size: int, precision: str, steps: int) -> dict[str, Any]:
    """Median seconds per step of ``method`` at one scale of long side ``size``."""
    from portrait_stylize import stylize

    content, style = _images()
    stamps: list[float] = []
    stylize(
        content,
        style,
        method,
        size=size,
        min_size=size,  # one scale (None would mean "the method's default")
        initial_iterations=steps + 1,
        iterations=steps + 1,
        precision=precision,
        callbacks=[lambda step: stamps.append(time.perf_counter())],
    )
    return {"seconds_per_iteration": float(statistics.median(np.diff(stamps)))}


def gemm_peak(precision: str) -> float:
    """GFLOP/s of a 2048³ matrix product (median of 5)."""
    import torch

    dtype = torch.bfloat16 if precision == "bf16" else torch.float32
    a, b = torch.rand(2048, 2048, dtype=dtype), torch.rand(2048, 2048, dtype=dtype)
    times = []
    for _ in range(6):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * 2048**3 / statistics.median(times[1:]) / 1e9


def one(kind: str, size: int, precision: str, steps: int) -> dict[str, Any]:
    """One configuration, measured in this process."""
    import torch

    row = (
        measure_floor(kind.removeprefix("floor:"), size, precision, steps)
        if kind.startswith("floor:")
        else measure_method(kind, size, precision, steps)
    )
    return {
        "kind": kind,
        "size": size,
        "precision": precision,
        **row,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "threads": torch.get_num_threads(),
    }


def schedule(method: str, size: int) -> list[tuple[int, int]]:
    """(long side, iterations) of the method's default schedule ending at ``size``."""
    from portrait_stylize.methods import resolve_settings, scale_schedule

    return scale_schedule(resolve_settings(method, {"size": size}))


def fit_exponent(rows: list[dict[str, Any]]) -> tuple[float, float]:
    """(a, b) of seconds = a · pixels^b, least squares in log space."""
    x = np.log([r["size"] ** 2 for r in rows])
    y = np.log([r["seconds_per_iteration"] for r in rows])
    b, log_a = np.polyfit(x, y, 1)
    return float(math.exp(log_a)), float(b)


def tables(rows: list[dict[str, Any]], peaks: dict[str, float]) -> str:
    """Markdown: per-iteration table with floor ratios (each method against its backbone's
    floor), then exponents and schedule totals."""
    lines = [
        "| method | backbone | size | precision | s / it | floor s / it | method / floor | "
        "floor GFLOP/s | % of GEMM peak | peak RSS (MB) |",
        "| --- | --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    floors = {
        (r["kind"], r["size"], r["precision"]): r for r in rows if r["kind"].startswith("floor:")
    }
    for r in rows:
        if r["kind"].startswith("floor:"):
            continue
        backbone = backbone_of(r["kind"])
        floor = floors.get((floor_kind(backbone), r["size"], r["precision"]))
        ratio = (
            f"{r['seconds_per_iteration'] / floor['seconds_per_iteration']:.2f}" if floor else "–"
        )
        fs = f"{floor['seconds_per_iteration']:.3f}" if floor else "–"
        gf = f"{floor['gflops']:.0f}" if floor else "–"
        share = f"{100 * floor['gflops'] / peaks[r['precision']]:.0f} %" if floor else "–"
        lines.append(
            f"| {r['kind']} | {backbone} | {r['size']} | {r['precision']} "
            f"| {r['seconds_per_iteration']:.3f} "
            f"| {fs} | {ratio} | {gf} | {share} | {r['peak_rss_mb']:.0f} |"
        )
    lines += [
        "",
        "| method | precision | exponent (s / it ∝ pixels^b) | default schedule at 512 "
        "(estimated) | at 1024 | at 2048 |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for kind in dict.fromkeys(r["kind"] for r in rows):
        for precision in dict.fromkeys(r["precision"] for r in rows):
            points = [r for r in rows if r["kind"] == kind and r["precision"] == precision]
            if len(points) < 2:
                continue
            a, b = fit_exponent(points)
            cells = []
            for end in (512, 1024, 2048):
                if kind.startswith("floor:"):
                    cells.append("–")
                    continue
                total = sum(n * a * (side * side) ** b for side, n in schedule(kind, end))
                cells.append(f"{total / 60:.1f} min")
            lines.append(f"| {kind} | {precision} | {b:.2f} | {' | '.join(cells)} |")
    measured = ", ".join(f"{p} {gflops:.0f} GFLOP/s" for p, gflops in peaks.items())
    lines.append(
        f"\nGEMM 2048³ peak: {measured}; {rows[0]['threads']} torch threads; each row a "
        "fresh process, median of its steps."
    )
    return "\n".join(lines)


def read_rows(paths: list[Path]) -> list[dict[str, Any]]:
    """Rows of earlier CSV files; a later file's row replaces an earlier one of the same
    kind, size and precision."""
    merged: dict[tuple[str, int, str], dict[str, Any]] = {}
    for path in paths:
        with path.open() as handle:
            for raw in csv.DictReader(handle):
                row: dict[str, Any] = {
                    k: v if k in ("kind", "precision") else float(v) for k, v in raw.items() if v
                }
                row["size"], row["threads"] = int(row["size"]), int(row["threads"])
                merged[row["kind"], row["size"], row["precision"]] = row
    return sorted(merged.values(), key=lambda r: (r["size"], r["precision"] == "bf16"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024, 2048])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--steps", type=int, default=3, help="timed steps after one warm-up")
    parser.add_argument("--csv", type=Path, default=Path("out/bench/suite.csv"))
    parser.add_argument(
        "--tables", nargs="+", type=Path, help="print the tables of earlier CSV files (merged)"
    )
    parser.add_argument("--one", nargs=3, metavar=("KIND", "SIZE", "PRECISION"), help="internal")
    args = parser.parse_args()
    if args.one:
        kind, size, precision = args.one
        print(json.dumps(one(kind, int(size), precision, args.steps)))
        return
    if args.tables:
        rows = read_rows(args.tables)
        print(tables(rows, {p: gemm_peak(p) for p in dict.fromkeys(r["precision"] for r in rows)}))
        return
    rows = []
    floors = dict.fromkeys(floor_kind(backbone_of(m)) for m in args.methods)
    for size in args.sizes:
        for precision in args.precisions:
            for kind in (*floors, *args.methods):
                command = [sys.executable, __file__, "--one", kind, str(size), precision]
                done = subprocess.run(
                    [*command, "--steps", str(args.steps)], capture_output=True, text=True
                )
                if done.returncode != 0:
                    print(
                        f"{kind} {size} {precision} failed:\n{done.stderr[-2000:]}", file=sys.stderr
                    )
                    continue
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    args.csv.parent.mkdir(parents=True, exist_ok=True)
    with args.csv.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    print(tables(rows, {p: gemm_peak(p) for p in args.precisions}))


if __name__ == "__main__":
    main()
