"""How fast this machine runs the feature network, measured once and kept in the cache.

The fastest memory layout of the VGG convolutions depends on the processor: in bf16 on a
Xeon with AMX, channels-last runs VGG-19's forward + backward 2.4x faster than NCHW, on an
AMD EPYC with AVX-512 BF16 but no AMX 1.18x, and on an AVX2-only one (bf16 emulated) it is
slower (docs/performance.md).
So the layout is not assumed from the CPU's flags but timed: the first run on a machine
(per processor or GPU, thread count, backbone, precision and PyTorch version) times the
backbone's forward + backward to the image (the *floor*) at :data:`PROBE_SIZES` in both
layouts, keeps the faster, and writes what it measured to the cache. The floor by size
also gives the time of a run before it starts (:meth:`Speed.stage_seconds`), with a
per-method cost model that every finished run refines (:func:`learn`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import platform
import statistics
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .features import FeatureExtractor
from .files import atomic_output
from .images import long_side_shape
from .methods.base import scale_schedule
from .methods.settings import Settings
from .weights import cache_root

PROBE_SIZES = (256, 512)
"""Square sizes (px) at which the floor is timed."""
PROBE_LAYER = "relu5_1"
PROBE_REPEATS = 2
"""Timed passes per size and layout, after one warm-up pass (the median is kept)."""
DEFAULT_COST = (1.3, 0.12)
"""(a, b) of a step's seconds = a x floor(pixels) + b x faces x floor(512 px) before any
run of a method was seen on this machine: the face terms of one face (four FaceNet views
and FaceMesh) cost about an eighth of the 512 px floor (docs/performance.md)."""
MAX_OBSERVATIONS = 20
"""Stages kept per method for the cost model, the newest (about four runs): a machine whose
load changed is learnt again within a few runs."""
RELEARN_RATIO = 1.5
"""A run this many times slower or faster than its method's cost model predicted replaces
the model's observations: what was seen before no longer holds for this machine."""
LEARN_MIN_PIXELS = 128 * 128
LEARN_MIN_STEPS = 10
"""Smaller stages teach the cost model nothing: their steps are Python overhead, not the
network (a 32 px step costs several floors)."""


def processor_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else the platform's description)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def machine_key(backbone: str, device: torch.device, autocast: bool) -> str:
    """What a measurement holds for: processor (and threads) or GPU, backbone, precision,
    PyTorch."""
    where = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"{processor_name()}-{torch.get_num_threads()}t"
    )
    text = f"{where}|{backbone}|{'bf16' if autocast else 'fp32'}|torch {torch.__version__}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class Speed:
    """What was measured on one machine (:func:`machine_key`).

    ``channels_last``: the feature network's faster layout; ``floor``: seconds of its
    forward + backward in that layout by square side (px); ``observed``: per method, the
    stages of finished runs as (floor seconds of the stage's size, faces, seconds per
    step), the newest last.
    """

    key: str
    channels_last: bool
    floor: dict[int, float]
    observed: dict[str, list[tuple[float, int, float]]] = field(default_factory=dict)

    def floor_seconds(self, pixels: int) -> float:
        """The floor at ``pixels`` pixels: the power law through the two probe sizes."""
        measured = sorted(self.floor.items())
        (small, t_small), (large, t_large) = measured[0], measured[-1]
        exponent = math.log(t_large / t_small) / math.log(large**2 / small**2)
        return t_large * (pixels / large**2) ** exponent

    def step_cost(self, method: str) -> tuple[float, float]:
        """(a, b) of ``method``'s step: a x floor + b x faces x floor(512 px), fitted by
        least squares to the observed stages (at least two distinct sizes), else
        :data:`DEFAULT_COST`."""
        rows = self.observed.get(method, [])
        if len({round(floor, 6) for floor, _, _ in rows}) < 2:
            return DEFAULT_COST
        unit = self.floor_seconds(512 * 512)
        design = torch.tensor([[floor, faces * unit] for floor, faces, _ in rows])
        target = torch.tensor([[seconds] for _, _, seconds in rows])
        if not any(faces for _, faces, _ in rows):
            a = float((design[:, :1] * target).sum() / design[:, :1].pow(2).sum())
            return a, DEFAULT_COST[1]
        a, b = torch.linalg.lstsq(design, target).solution.flatten().tolist()
        return max(a, 0.1), max(b, 0.0)

    def stage_seconds(self, method: str, pixels: int, faces: int, steps: int) -> float:
        """Estimated seconds of ``steps`` steps of ``method`` on ``pixels`` pixels."""
        a, b = self.step_cost(method)
        unit = self.floor_seconds(512 * 512)
        return steps * (a * self.floor_seconds(pixels) + b * faces * unit)

    def plan(self, settings: Settings, height: int, width: int, faces: int) -> list[float]:
        """Estimated seconds of each scale of a run of ``settings`` on a photo of
        ``height`` x ``width`` px with ``faces`` faces in its loss."""
        return [
            self.stage_seconds(
                settings.method, math.prod(long_side_shape(height, width, side)), faces, steps
            )
            for side, steps in scale_schedule(settings)
        ]


def _path(key: str) -> Path:
    return cache_root() / "machine" / f"{key}.json"


def _time_floor(
    extractor: FeatureExtractor, size: int, channels_last: bool, autocast: bool
) -> float:
    """Median seconds of ``extractor``'s forward + backward to the image at size x size."""
    device = extractor.mean.device
    image = torch.rand(1, 3, size, size, device=device)
    if channels_last:
        image = image.contiguous(memory_format=torch.channels_last)
    times = []
    for _ in range(PROBE_REPEATS + 1):
        pixels = image.clone().requires_grad_(True)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            features = extractor(pixels, (PROBE_LAYER,))
        features[PROBE_LAYER].float().sum().backward()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:])


def measure(extractor: FeatureExtractor, autocast: bool) -> Speed:
    """Time ``extractor``'s floor in both layouts at :data:`PROBE_SIZES` (seconds to a
    minute, by the machine); the faster layout is the faster at the largest size."""
    layouts = {
        channels_last: {
            size: _time_floor(extractor, size, channels_last, autocast) for size in PROBE_SIZES
        }
        for channels_last in (False, True)
    }
    largest = max(PROBE_SIZES)
    best = layouts[True][largest] < layouts[False][largest]
    key = machine_key(extractor.spec.name, extractor.mean.device, autocast)
    return Speed(key, best, layouts[best])


def load(backbone: str, device: torch.device, autocast: bool) -> Speed | None:
    """This machine's measurement of ``backbone`` from the cache, or None (not measured,
    unreadable)."""
    key = machine_key(backbone, device, autocast)
    with contextlib.suppress(OSError, ValueError, TypeError, KeyError):
        data = json.loads(_path(key).read_text())
        return Speed(
            key,
            bool(data["channels_last"]),
            {int(size): float(seconds) for size, seconds in data["floor"].items()},
            {
                method: [(float(f), int(n), float(s)) for f, n, s in rows]
                for method, rows in data.get("observed", {}).items()
            },
        )
    return None


def save(speed: Speed) -> None:
    """Write ``speed`` to the cache; a cache that cannot be written only costs measuring
    again next time."""
    with contextlib.suppress(OSError), atomic_output(_path(speed.key)) as tmp:
        tmp.write_text(json.dumps(asdict(speed), indent=1))


def learn(settings: Settings, device: torch.device, faces: int, stages: Sequence[dict]) -> None:
    """Add a finished run's stages (run-record entries: ``size``, ``iterations``,
    ``seconds``, ``precision``) to its method's cost model on this machine, those of at
    least :data:`LEARN_MIN_STEPS` steps on :data:`LEARN_MIN_PIXELS` pixels; a run far
    from the model's prediction (:data:`RELEARN_RATIO`) starts the model afresh."""
    autocast, method = settings.autocast, settings.method
    known = load(settings.backbone, device, autocast)
    if known is None:
        return
    new = [
        (known.floor_seconds(h * w), faces, stage["seconds"] / stage["iterations"])
        for stage in stages
        for h, w in [stage["size"]]
        if stage.get("iterations", 0) >= LEARN_MIN_STEPS
        and h * w >= LEARN_MIN_PIXELS
        and stage.get("precision") == ("bf16" if autocast else "fp32")
    ]
    if not new:
        return
    a, b = known.step_cost(method)
    unit = known.floor_seconds(512 * 512)
    predicted = sum(a * floor + b * n * unit for floor, n, _ in new)
    actual = sum(seconds for _, _, seconds in new)
    rows = known.observed.setdefault(method, [])
    if max(predicted / actual, actual / predicted) > RELEARN_RATIO:
        rows.clear()  # the machine changed (its load, its clock): this run is the model
    rows.extend(new)
    del rows[:-MAX_OBSERVATIONS]
    save(known)
