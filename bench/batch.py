"""Batch throughput: jobs per hour against workers, local vs Ray executor, and what the
warm network cache saves on a worker's second job.

Each configuration is one real ``portrait-stylize batch`` command (a fresh process and
a fresh OUTDIR) over the shared photos x paintings. From its wall time and the batch
store / records it reports:

- jobs/h: jobs / wall time of the whole command (start-up and summary included);
- fixed s: what the command costs besides its jobs (interpreter, torch and Ray
  start-up, workers started, the contact sheet): wall time minus the jobs' seconds
  divided by the workers;
- job overhead s: a job's seconds (from claim to saved result) minus its painting
  (the optimisation's stages, or the network's forward pass): reading, network
  loading, face detection, saving;
- first / later job: a worker's first job (cold: networks loaded) against the mean of
  its later ones (warm).

    python bench/batch.py [--out out/bench/batch] [--executors local ray]
        [--workers 1 2] [--sizes 256 512] [--method instant] [--option ...]

``--option "--iterations 50"`` passes stylize options to every job. It prints a
Markdown table and writes ``OUT/batch.json``.
"""

from __future__ import annotations

import argparse
import json
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def run(config: dict[str, Any], photos: str, styles: str, out: Path) -> dict[str, Any]:
    """One batch command for ``config``; its figures."""
    shutil.rmtree(out, ignore_errors=True)
    command = [sys.executable, "-m", "portrait_stylize.cli", "batch", photos, styles]
    command += ["-o", str(out), "-q", "--method", config["method"]]
    command += ["--size", str(config["size"]), "--executor", config["executor"]]
    command += ["--workers", str(config["workers"]), *shlex.split(config["option"])]
    began = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    wall = time.perf_counter() - began
    with sqlite3.connect(out / "batch.sqlite") as conn:
        rows = conn.execute("SELECT name, seconds, started FROM jobs ORDER BY started").fetchall()
    painting = []
    for name, _, _ in rows:
        record = json.loads((out / f"{name}.png.json").read_text())
        painting.append(sum(stage["seconds"] for stage in record["stages"]))
    jobs = len(rows)
    per_job = [seconds for _, seconds, _ in rows]
    first = per_job[: config["workers"]]
    later = per_job[config["workers"] :] or [float("nan")]
    return {
        **config,
        "jobs": jobs,
        "wall_s": wall,
        "jobs_per_h": jobs / wall * 3600,
        "painting_s": sum(painting) / jobs,
        "fixed_s": wall - sum(per_job) / config["workers"],
        "job_overhead_s": (sum(per_job) - sum(painting)) / jobs,
        "first_job_s": sum(first) / len(first),
        "later_job_s": sum(later) / len(later),
    }


def table(results: list[dict[str, Any]]) -> str:
    """Markdown: one row per configuration, ratios against the local 1-worker row of
    the same size."""
    head = (
        "| size | executor | workers | jobs | wall s | jobs/h | vs local 1 | fixed s "
        "| painting s / job | job overhead s | first job s | later jobs s |\n"
        "| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )
    lines = [head]
    for r in results:
        base = next(
            (
                b
                for b in results
                if (b["size"], b["executor"], b["workers"]) == (r["size"], "local", 1)
            ),
            r,
        )
        lines.append(
            f"| {r['size']} | {r['executor']} | {r['workers']} | {r['jobs']} | {r['wall_s']:.1f} "
            f"| {r['jobs_per_h']:.0f} | {r['jobs_per_h'] / base['jobs_per_h']:.2f}x "
            f"| {r['fixed_s']:.1f} | {r['painting_s']:.2f} | {r['job_overhead_s']:.2f} "
            f"| {r['first_job_s']:.2f} "
            f"| {r['later_job_s']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("out/bench/batch"))
    parser.add_argument("--photos", default=str(DATA / "content"))
    parser.add_argument("--styles", default=str(DATA / "style" / "[st]*.jpg"))
    parser.add_argument("--executors", nargs="+", default=["local", "ray"])
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--sizes", nargs="+", type=int, default=[256, 512])
    parser.add_argument("--method", default="instant")
    parser.add_argument("--option", default="", help="stylize options for every job")
    parser.add_argument("--tables", nargs="+", type=Path, help="print earlier batch.json files")
    args = parser.parse_args()
    if args.tables:
        for path in args.tables:
            print(table(json.loads(path.read_text())), end="\n\n")
        return
    results = []
    for size in args.sizes:
        for executor in args.executors:
            for workers in args.workers:
                config = {
                    "method": args.method,
                    "size": size,
                    "executor": executor,
                    "workers": workers,
                    "option": args.option,
                }
                name = f"{args.method}-{size}-{executor}-{workers}"
                results.append(run(config, args.photos, args.styles, args.out / name))
                print(json.dumps(results[-1]), file=sys.stderr, flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "batch.json").write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
