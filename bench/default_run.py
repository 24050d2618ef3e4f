"""The default portrait run against this machine's floor: the speed goal's table.

    python bench/default_run.py [--sizes 512 1024] [--method portrait-painting]
                                [--pairs astronaut:starry_night] [--baseline]

For each size and pair, a whole run of the method at its defaults (a fresh process, as
a user's command), beside the floor measured in the same process before it: the original
VGG-19's forward + backward to the image at 512 px in the fastest precision and memory
layout this CPU offers (:mod:`portrait_stylize.machine`). Columns: seconds of
stylizing (the stages, from the run record), the whole command's wall time, the run's
estimate before it started, and the stylizing time in floors. ``--baseline`` adds the
same run with ``--paper-exact``'s schedule of the method (the slow default it replaced).
Also times the ``instant`` command end to end (median of 3). Images come from
``examples/`` or ``../shared/data``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = [ROOT / "examples", ROOT.parent / "shared" / "data" / "content"]
STYLES = [ROOT / "examples", ROOT.parent / "shared" / "data" / "style"]
FLOOR_SIZE = 512


def find(name: str, folders: list[Path]) -> Path:
    """``name``.jpg from the first folder that has it."""
    for folder in folders:
        if (folder / f"{name}.jpg").is_file():
            return folder / f"{name}.jpg"
    raise SystemExit(f"{name}.jpg not found in {', '.join(map(str, folders))}")


def floor_seconds() -> tuple[float, str]:
    """The 512 px VGG-19 floor in the fastest layout, in a fresh process: (seconds, how)."""
    code = (
        "import json, torch\n"
        "from portrait_stylize import machine, models\n"
        "from portrait_stylize.engine import bf16_is_fast\n"
        "x = models.extractor('vgg19-caffe', 'max', 'replicate', 'torchvision', 'cpu')\n"
        "bf16 = bf16_is_fast('cpu')\n"
        "s = machine.measure(x, bf16)\n"
        "print(json.dumps({'s': s.floor[512], 'bf16': bf16, 'cl': s.channels_last}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    row = json.loads(out.stdout.strip().splitlines()[-1])
    how = f"{'bf16' if row['bf16'] else 'fp32'}, {'channels-last' if row['cl'] else 'NCHW'}"
    return row["s"], how


def command(args: list[str]) -> float:
    """Wall seconds of ``portrait-stylize ARGS`` in a fresh process."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "portrait_stylize.cli", *args], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[512])
    parser.add_argument("--method", default="portrait-painting")
    parser.add_argument("--pairs", nargs="+", default=["astronaut:starry_night"])
    parser.add_argument("--baseline", action="store_true")
    args = parser.parse_args()
    floor, how = floor_seconds()
    out = Path(tempfile.mkdtemp(prefix="bench-default-"))
    rows = []
    variants = [("default", [])] + ([("--paper-exact", ["--paper-exact"])] if args.baseline else [])
    for size in args.sizes:
        for pair in args.pairs:
            content, style = pair.split(":")
            for label, extra in variants:
                result = out / f"{content}-{style}-{size}-{len(rows)}.png"
                wall = command(
                    [
                        str(find(content, DATA)),
                        str(find(style, STYLES)),
                        "-o",
                        str(result),
                        "--method",
                        args.method,
                        "--size",
                        str(size),
                        "-q",
                        *extra,
                    ]
                )
                record = json.loads(result.with_name(result.name + ".json").read_text())
                painting = sum(stage["seconds"] for stage in record["stages"])
                rows.append(
                    (size, pair, label, painting, wall, record.get("estimated_s"), painting / floor)
                )
    examples = ROOT / "examples"
    instant = [
        command(
            [
                str(examples / "astronaut.jpg"),
                str(examples / "starry_night.jpg"),
                "-o",
                str(out / "instant.png"),
                "--method",
                "instant",
                "-q",
            ]
        )
        for _ in range(3)
    ]
    cpu = subprocess.run(
        [
            sys.executable,
            "-c",
            "from portrait_stylize.machine import processor_name as p; print(p())",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    threads = os.environ.get("OMP_NUM_THREADS", "all")
    print(
        f"{cpu}, threads: {threads}; floor (VGG-19 forward + backward at {FLOOR_SIZE} px, "
        f"{how}): {floor:.3f} s\n"
    )
    print("| size | pair | schedule | stylizing s | command s | estimate s | stylizing / floor |")
    print("| ---: | --- | --- | ---: | ---: | ---: | ---: |")
    for size, pair, label, painting, wall, estimate, ratio in rows:
        print(
            f"| {size} | {pair} | {label} | {painting:.0f} | {wall:.0f} | {estimate} "
            f"| {ratio:.0f} |"
        )
    print(f"\n`instant`, 512 px, whole command: {statistics.median(instant):.2f} s (median of 3)")


if __name__ == "__main__":
    main()
