"""Time per image of the ``instant`` method's networks: onnxruntime vs the torch replay.

Runs Magenta's style transformer on a content image of SIZE x SIZE (and the style
prediction network at 256 x 256) with onnxruntime (the graphs as shipped, their fixed
384 x 384 input made free; int8 kernels after onnxruntime's QDQ fusion) and with this
tool's torch replay (:class:`~portrait_stylize.nets.onnx.ONNXModule`, fp32 with the
int8 rounding of activations kept), batch 1 and 4. Then the whole command
``portrait-stylize CONTENT STYLE -o OUT --method instant`` (process start, model load,
one image). Prints a Markdown table; times are medians of warm runs.

    python bench/bench_instant.py [--size 512] [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from bench_networks import median_seconds

from portrait_stylize.nets.magenta import EMBEDDING, STYLE_SIZE, WEIGHTS, load_magenta
from portrait_stylize.weights import weight_path

ROOT = Path(__file__).resolve().parents[1]
CONTENT = ROOT / "examples" / "astronaut.jpg"
STYLE = ROOT / "examples" / "starry_night.jpg"


def _free_session(name: str, threads: int) -> ort.InferenceSession:
    """An onnxruntime session of weights ``name`` with its image input's H and W made free."""
    model = onnx.load(str(weight_path(name)))
    for value in (*model.graph.input[:1], *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].dim_value > 1:
            dims[1].dim_param, dims[2].dim_param = "height", "width"
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = args.size

    predict_ort, transform_ort = (_free_session(name, args.threads) for name in WEIGHTS)
    predictor, transformer = load_magenta("cpu")
    rng = np.random.default_rng(0)
    style = rng.random((1, STYLE_SIZE, STYLE_SIZE, 3), dtype=np.float32)
    embedding = rng.standard_normal((1, 1, 1, EMBEDDING), dtype=np.float32)
    rows: list[tuple[str, int, float]] = []

    def ort_predict() -> object:
        return predict_ort.run(None, {predict_ort.get_inputs()[0].name: style})

    names = [i.name for i in transform_ort.get_inputs()]
    feed = {names[0]: rng.random((1, size, size, 3), dtype=np.float32), names[1]: embedding}

    def ort_transform() -> object:
        return transform_ort.run(None, feed)

    def torch_predict(batch: int) -> Callable[[], object]:
        x = torch.rand(batch, 3, STYLE_SIZE, STYLE_SIZE)
        return torch.no_grad()(lambda: predictor(x))

    def torch_transform(batch: int) -> Callable[[], object]:
        x = torch.rand(batch, 3, size, size)
        e = torch.from_numpy(embedding).reshape(1, EMBEDDING).expand(batch, -1)
        return torch.no_grad()(lambda: transformer(x, e))

    cases: list[tuple[str, int, Callable[[], object]]] = [
        (f"transformer {size}², onnxruntime (int8 kernels)", 1, ort_transform),
        (f"transformer {size}², torch replay", 1, torch_transform(1)),
        (f"transformer {size}², torch replay", 4, torch_transform(4)),
        ("style prediction 256², onnxruntime (int8 kernels)", 1, ort_predict),
        ("style prediction 256², torch replay", 1, torch_predict(1)),
        ("style prediction 256², torch replay", 4, torch_predict(4)),
    ]
    for label, batch, fn in cases:
        rows.append((label, batch, median_seconds(fn, args.repeats) / batch))

    with tempfile.TemporaryDirectory() as tmp:
        command = [
            *(sys.executable, "-m", "portrait_stylize.cli", str(CONTENT), str(STYLE)),
            *("-o", f"{tmp}/out.png", "--method", "instant", "--size", str(size), "-q"),
        ]
        cli = median_seconds(lambda: subprocess.run(command, check=True), 2)
    rows.append((f"`portrait-stylize ... --method instant` at {size} px, wall", 1, cli))

    baseline = {label.split(",")[0]: t for label, _, t in rows if "onnxruntime" in label}
    print("| what | batch | ms per image | vs onnxruntime |")
    print("| --- | ---: | ---: | ---: |")
    for label, batch, seconds in rows:
        base = baseline.get(label.split(",")[0])
        ratio = f"{seconds / base:.2f}x" if base else ""
        print(f"| {label} | {batch} | {seconds * 1e3:.1f} | {ratio} |")
    print(f"\n{args.threads} threads, median of {args.repeats} warm runs (the command: of 2).")


if __name__ == "__main__":
    main()
