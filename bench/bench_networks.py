"""Forward and forward+backward time of each perception network, batch 1 and 6.

Real weights at each network's input size; backward is to the input only (as in the
losses). Prints a Markdown table; times are medians.

    python bench/bench_networks.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from portrait_stylize.features import build_extractor
from portrait_stylize.nets.facenet import load_facenet
from portrait_stylize.nets.mediapipe import load_mediapipe

FACENET_TAPS = ("conv_1a", "conv_2a", "maxpool_3a", "conv_4a", "conv_4b")


def _networks() -> dict[str, tuple[Callable[[torch.Tensor], object], int]]:
    """name -> (forward function of a (B, 3, S, S) batch in [0, 1], input size S)."""
    facenet = load_facenet("facenet-casia")
    vgg = build_extractor()
    facemesh = load_mediapipe("facemesh")
    blazeface = load_mediapipe("blazeface")
    selfie = load_mediapipe("selfie-segmentation")
    return {
        "VGG-16 (HED) to relu5_1": (lambda x: vgg(x, ["relu5_1"]), 256),
        "FaceNet, loss taps": (lambda x: facenet.features(x, FACENET_TAPS), 160),
        "FaceNet, embedding": (facenet, 160),
        "FaceMesh": (facemesh, 192),
        "BlazeFace": (blazeface, 128),
        "selfie segmentation": (selfie, 256),
    }


def _scalar(output: object) -> torch.Tensor:
    """Sum of every tensor in a network's output (dict, tuple or tensor)."""
    if isinstance(output, torch.Tensor):
        return output.float().sum()
    values = output.values() if isinstance(output, dict) else output
    return sum(_scalar(v) for v in values if isinstance(v, torch.Tensor | dict | tuple))  # type: ignore[return-value]


def median_seconds(work: Callable[[], object], repeats: int) -> float:
    work()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| network | input | batch | forward (ms) | forward+backward (ms) | backward / forward |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (forward, size) in _networks().items():
        for batch in (1, 6):
            x = torch.rand(batch, 3, size, size)

            def fwd(x: torch.Tensor = x, forward: Callable = forward) -> object:
                with torch.no_grad():
                    return forward(x)

            def fwd_bwd(x: torch.Tensor = x, forward: Callable = forward) -> None:
                pixels = x.clone().requires_grad_(True)
                _scalar(forward(pixels)).backward()

            f = median_seconds(fwd, args.repeats) * 1000
            fb = median_seconds(fwd_bwd, args.repeats) * 1000
            print(f"| {name} | {size}² | {batch} | {f:.1f} | {fb:.1f} | {fb / f:.2f}x |")
    print(f"\n{torch.get_num_threads()} torch threads, median of {args.repeats} runs.")


if __name__ == "__main__":
    main()
