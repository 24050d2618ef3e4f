"""A run's saved progress, so that a killed run continues where it was.

A checkpoint ``OUT.ckpt.pt`` beside the result holds the stage to continue, the image
or the stage's exact state (:class:`~portrait_stylize.engine.StageState`), Adam's
moments, the finished stages' records, the settings and the sha256 of the input pixels.
It is written atomically; resuming refuses a checkpoint of other inputs or settings.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from .engine import AdamState, StageState
from .errors import InputError, SettingsError
from .files import atomic_output
from .methods import Settings, job_settings

FORMAT = 1


@dataclass
class RunCheckpoint:
    """Where a run stands. ``stage``: the stage to continue; ``stages``: the records of the
    stages before it. At a stage boundary ``image`` (1, 3, h, w) is the previous stage's
    result and ``adam`` its Adam state; within a stage ``state`` continues it exactly and
    ``autocast`` says whether it still runs in bf16."""

    settings: dict[str, Any]
    inputs: str
    stage: int
    stages: list[dict[str, Any]]
    image: torch.Tensor | None = None
    adam: AdamState | None = None
    state: StageState | None = None
    autocast: bool = False

    @property
    def step(self) -> int:
        """Steps already done in stage ``stage``."""
        return self.state.iteration if self.state is not None else 0


def checkpoint_path(output: str | Path) -> Path:
    """The checkpoint beside a result: ``OUT`` -> ``OUT.ckpt.pt``."""
    output = Path(output)
    return output.with_name(output.name + ".ckpt.pt")


def input_digest(images: list[torch.Tensor]) -> str:
    """sha256 of the pixels of the content and style images (each (C, H, W))."""
    digest = hashlib.sha256()
    for image in images:
        digest.update(str(tuple(image.shape)).encode())
        digest.update(image.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def save(checkpoint: RunCheckpoint, path: Path) -> None:
    """Write ``checkpoint`` to ``path`` atomically (plain tensors and JSON, safe to load)."""
    data = {
        "format": FORMAT,
        "settings": json.dumps(checkpoint.settings),
        "inputs": checkpoint.inputs,
        "stage": checkpoint.stage,
        "stages": json.dumps(checkpoint.stages),
        "image": checkpoint.image,
        "adam": vars(checkpoint.adam) if checkpoint.adam is not None else None,
        "state": vars(checkpoint.state) if checkpoint.state is not None else None,
        "autocast": checkpoint.autocast,
    }
    with atomic_output(path) as tmp:
        torch.save(data, tmp)


def load(path: Path, settings: Settings, inputs: str, device: torch.device) -> RunCheckpoint:
    """The checkpoint at ``path`` with its tensors on ``device``, checked against this run's
    ``settings`` and ``inputs`` (:func:`input_digest`); InputError or SettingsError says why
    it cannot be used."""
    if not path.is_file():
        raise InputError(f"{path}: no checkpoint to resume from (run without --resume)")
    try:
        data = torch.load(path, map_location=device, weights_only=True)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')}, expected {FORMAT}")
        saved = json.loads(data["settings"])
    except Exception as exc:
        raise InputError(f"{path}: not a readable checkpoint ({exc})") from None
    if data["inputs"] != inputs:
        raise InputError(
            f"{path}: made from other content or style images; resume with the same inputs"
        )
    wanted = job_settings(settings)
    differing = sorted(k for k in wanted.keys() | saved.keys() if wanted.get(k) != saved.get(k))
    if differing:
        changes = ", ".join(f"{k} {saved.get(k)!r} -> {wanted.get(k)!r}" for k in differing)
        raise SettingsError(f"{path}: made with other settings ({changes}); resume with the same")
    return RunCheckpoint(
        settings=saved,
        inputs=inputs,
        stage=data["stage"],
        stages=json.loads(data["stages"]),
        image=data["image"],
        adam=AdamState(**data["adam"]) if data["adam"] is not None else None,
        state=StageState(**data["state"]) if data["state"] is not None else None,
        autocast=data["autocast"],
    )
