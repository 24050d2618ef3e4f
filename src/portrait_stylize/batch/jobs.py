"""The jobs of a batch: inputs (folders, glob patterns, a CSV manifest) to named jobs.

A job's ``key`` (:func:`~portrait_stylize.jobdb.job_id` of its input hashes and its
resolved settings) is written into its result's record; a result whose record carries
the job's key is done, whatever the store says.
"""

from __future__ import annotations

import csv
import glob
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError, SettingsError
from ..images import INPUT_SUFFIXES, record_path
from ..jobdb import file_sha256, job_id
from ..methods import job_settings, resolve_settings

IMAGE_SUFFIXES = INPUT_SUFFIXES
"""What a folder of inputs is searched for: the endings of every format the loader reads."""


@dataclass(frozen=True)
class BatchJob:
    """One photo painted in one style with one method's settings."""

    name: str
    """The output's stem: ``{photo}--{style}--{method}``."""
    content: Path
    style: Path
    method: str
    settings: dict[str, Any]
    """Overrides of the method's defaults (JSON values)."""

    def output(self, outdir: Path) -> Path:
        return outdir / f"{self.name}.png"

    def key(self) -> str:
        """The job's identity: its inputs' sha256 and its resolved settings (worker
        settings, such as the device, left out). OSError when an input is unreadable."""
        settings = job_settings(resolve_settings(self.method, self.settings))
        return job_id(file_sha256(self.content), [file_sha256(self.style)], settings)


def expand(spec: str) -> list[Path]:
    """The images a folder (its image files, sorted) or glob pattern names."""
    path = Path(spec)
    if path.is_dir():
        found = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    else:
        found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
    if not found:
        raise InputError(f"{spec}: no images found (a folder, glob pattern or .csv manifest)")
    return found


def read_manifest(path: Path) -> list[tuple[Path, Path, str | None, dict[str, Any]]]:
    """Rows of a CSV manifest: ``content,style[,method][,settings JSON]`` (a header row
    naming ``content`` is skipped); relative paths are relative to the manifest."""
    rows = []
    with path.open(newline="") as handle:
        for number, row in enumerate(csv.reader(handle), start=1):
            if not row or row[0].strip() in ("", "content"):
                continue
            if len(row) < 2:
                raise InputError(f"{path}:{number}: needs content,style[,method][,settings]")
            method = row[2].strip() or None if len(row) > 2 else None
            try:
                settings = json.loads(row[3]) if len(row) > 3 and row[3].strip() else {}
            except json.JSONDecodeError as exc:
                raise SettingsError(f"{path}:{number}: settings are not JSON: {exc}") from exc
            if not isinstance(settings, dict):
                raise SettingsError(f"{path}:{number}: settings must be a JSON object")
            content, style = ((path.parent / row[i].strip()).absolute() for i in (0, 1))
            rows.append((content, style, method, settings))
    return rows


def collect(
    photos: str, styles: str | None, method: str, overrides: dict[str, Any]
) -> list[BatchJob]:
    """The batch's jobs: every photo x style pair, or each row of the manifest ``photos``
    (a .csv; ``styles`` then None). ``overrides``: settings for every job, which a
    manifest row's settings extend. SettingsError for bad settings or clashing names."""
    if photos.lower().endswith(".csv"):
        if styles is not None:
            raise SettingsError("a CSV manifest names the styles itself: give no STYLES")
        rows = read_manifest(Path(photos))
    elif styles is None:
        raise SettingsError("STYLES is needed unless PHOTOS is a CSV manifest")
    else:
        rows = [(c, s, None, {}) for c in expand(photos) for s in expand(styles)]
        rows = [(c.absolute(), s.absolute(), m, o) for c, s, m, o in rows]
    jobs: dict[str, BatchJob] = {}
    for content, style, row_method, row_settings in rows:
        chosen = row_method or method
        settings = {**overrides, **row_settings}
        resolve_settings(chosen, settings)
        job = BatchJob(f"{content.stem}--{style.stem}--{chosen}", content, style, chosen, settings)
        if job.name in jobs:
            raise SettingsError(f"two jobs would both write {job.name}.png")
        jobs[job.name] = job
    return list(jobs.values())


def is_done(job: BatchJob, outdir: Path, key: str) -> bool:
    """Whether ``job``'s result is in ``outdir`` with a record naming ``key``."""
    record = record_path(job.output(outdir))
    if not (job.output(outdir).is_file() and record.is_file()):
        return False
    try:
        return json.loads(record.read_text()).get("batch", {}).get("key") == key
    except (OSError, ValueError, AttributeError):
        return False
