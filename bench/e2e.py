"""End-to-end runs of one method side by side: wall time, peak memory and result quality.

Each configuration is a full ``portrait-stylize`` run in its own process (timed, peak
resident memory from the child's rusage); the results are scored against the content on
the same face boxes: identity cosine (facenet-msceleb, mean and worst face) and style
distance (Gram distance to the style image, vgg16-hed fp32, x 1e6). Ratios are against
the first configuration.

    python bench/e2e.py CONTENT STYLE [--method portrait-stylization] [--size 512]
        [--config NAME=OPTIONS ...] [--baseline-src PATH]

``--config "exact=--paper-exact"`` adds a run with extra options; ``--baseline-src``
adds a first run made with an older checkout's ``src`` (e.g. a git worktree of the
baseline commit) in place of this one.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import torch

from portrait_stylize.face_metrics import content_face_boxes, identity_cosine
from portrait_stylize.images import load_image, resize_long_side
from portrait_stylize.metrics import style_distance, style_evaluator


def run(name: str, command: list[str], out: Path, env: dict[str, str] | None) -> dict[str, Any]:
    """Run one configuration; wall seconds and the child's own peak RSS (MB)."""
    start = time.perf_counter()
    child = subprocess.Popen([*command, "-o", str(out), "-q"], env=env)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    if status != 0:
        raise SystemExit(f"{name} failed (status {status})")
    return {"name": name, "seconds": seconds, "peak_rss_mb": usage.ru_maxrss / 1024, "out": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("content", type=Path)
    parser.add_argument("style", type=Path)
    parser.add_argument("--method", default="portrait-stylization")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--config", action="append", default=[], metavar="NAME=OPTIONS")
    parser.add_argument("--baseline-src", type=Path)
    parser.add_argument("--out", type=Path, default=Path("out/bench/e2e"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    base = [str(args.content), str(args.style), "--method", args.method, "--size", str(args.size)]
    cli = [sys.executable, "-m", "portrait_stylize.cli"]
    configs: list[tuple[str, list[str], dict[str, str] | None]] = []
    if args.baseline_src:
        env = {**os.environ, "PYTHONPATH": str(args.baseline_src.resolve())}
        configs.append(("baseline", [*cli, *base], env))
    configs.append(("default", [*cli, *base], None))
    for entry in args.config:
        name, _, options = entry.partition("=")
        configs.append((name, [*cli, *base, *shlex.split(options)], None))
    rows = []
    for name, command, env in configs:
        rows.append(run(name, command, args.out / f"{name}.png", env))
        print(json.dumps({k: str(v) for k, v in rows[-1].items()}), file=sys.stderr, flush=True)

    content, style = load_image(args.content).rgb, load_image(args.style).rgb
    boxes = content_face_boxes(content)
    extractor = style_evaluator()
    print(
        "| run | wall (s) | speed-up | peak RSS (MB) | identity cos (mean / worst face) "
        "| vs first | style dist. | vs first |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    first: dict[str, float] = {}
    for row in rows:
        result = load_image(row["out"]).rgb
        identity = identity_cosine(content, result, boxes)
        side = max(result.shape[-2:])
        with torch.no_grad():
            style_d = 1e6 * float(
                style_distance(result[None], resize_long_side(style, side)[None], extractor)
            )
        mean = identity.mean if identity.mean is not None else float("nan")
        worst = min(identity.per_face, default=float("nan"))
        first = first or {"seconds": row["seconds"], "identity": mean, "style": style_d}
        print(
            f"| {row['name']} | {row['seconds']:.0f} | {first['seconds'] / row['seconds']:.2f}x "
            f"| {row['peak_rss_mb']:.0f} | {mean:.3f} / {worst:.3f} "
            f"| {100 * (mean / first['identity'] - 1):+.1f} % | {style_d:.0f} "
            f"| {100 * (style_d / first['style'] - 1):+.1f} % |"
        )
    print(
        f"\n{args.content.name} x {args.style.name}, {args.method}, {args.size} px; "
        f"{len(boxes)} faces; {torch.get_num_threads()} threads."
    )


if __name__ == "__main__":
    main()
