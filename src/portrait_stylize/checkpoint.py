"""A run's saved progress, so that a killed run continues where it was.

A checkpoint ``OUT.ckpt.pt`` beside the result holds the stage to continue, the image
or the stage's exact state (:class:`~portrait_stylize.engine.StageState`), Adam's
moments, the finished stages' records, the settings and the sha256 of the input pixels.
It is written atomically; resuming refuses a checkpoint of other inputs or settings.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import torch

from .engine import AdamState, StageState
from .errors import InputError, SettingsError
from .files import atomic_output
from .methods import Settings, job_settings
from .paths import checkpoint_path as checkpoint_path  # its name, for importers

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


def input_digest(images: list[torch.Tensor]) -> str:
    """sha256 of the pixels of the content and style images (each (C, H, W))."""
    digest = hashlib.sha256()
    for image in images:
        digest.update(str(tuple(image.shape)).encode())
        digest.update(image.detach().cpu().float().contiguous().numpy().tobytes())
    return digest.hexdigest()


def check_writable(path: Path) -> None:
    """Refuse (InputError), before a run, a checkpoint ``path`` whose folder (or nearest
    existing folder above, which the save would create it in) cannot be written."""
    folder = next(p for p in path.absolute().parents if p.is_dir())
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InputError(f"{path}: cannot write the checkpoint: folder {folder} is not writable")


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
    try:
        with atomic_output(path) as tmp, open(tmp, "wb") as handle:
            writer = _Writer(handle)
            try:
                torch.save(data, writer)
            except RuntimeError as exc:  # torch reports a failed write without its cause
                raise writer.error or exc from None
    except OSError as exc:
        raise InputError(f"{path}: cannot write the checkpoint ({exc.strerror or exc})") from None


class _Writer:
    """A file for ``torch.save`` that keeps the OSError of a failed write (a full disk),
    which torch turns into a bare RuntimeError."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle = handle
        self.error: OSError | None = None

    def write(self, data: bytes) -> int:
        try:
            return self.handle.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def flush(self) -> None:
        self.handle.flush()


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
