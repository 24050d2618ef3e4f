"""What a batch shows: one progress display, then a summary, a contact sheet and a CSV.

The display is a tqdm bar (done of total, throughput, time left) with the failed and
running counts beside it; when standard error is no terminal it prints a plain line
whenever the counts change. ``OUTDIR/index.html`` is the contact sheet (photo x style,
a thumbnail per method linking to the result) and ``OUTDIR/batch.csv`` each job's
state, attempts, seconds, error and, with ``--evaluate``, the evaluate metrics.
"""

from __future__ import annotations

import csv
import html
import sys
import time
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from ..errors import PortraitStylizeError
from ..evaluation import LABELS, scores
from .store import BatchStore, Row

THUMB_SIDE = 160


class Progress:
    """The batch's progress from the store's counts, drawn on each :meth:`tick`."""

    def __init__(self, store: BatchStore, total: int, quiet: bool = False) -> None:
        self.store = store
        self.total = total
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.began = time.monotonic()
        self.start = store.counts().get("done", 0)
        self.last: dict[str, int] = {}
        self.bar = tqdm(total=total, initial=self.start, unit="job", disable=quiet or not self.tty)

    def tick(self) -> None:
        counts = self.store.counts()
        if counts == self.last:
            return
        self.last = counts
        done, failed, running = (counts.get(s, 0) for s in ("done", "failed", "running"))
        if self.tty:
            self.bar.update(done - self.bar.n)
            self.bar.set_postfix(failed=failed, running=running, refresh=True)
        elif not self.quiet:
            print(
                f"batch: {done}/{self.total} done, {failed} failed, {running} running"
                f"{self._rate(done)}",
                file=sys.stderr,
                flush=True,
            )

    def _rate(self, done: int) -> str:
        """', 12.0 jobs/h, 0:05:00 left' once a job finished in this run."""
        finished = done - self.start
        if finished <= 0:
            return ""
        per_job = (time.monotonic() - self.began) / finished
        left = int(per_job * (self.total - done - self.last.get("failed", 0)))
        clock = f"{left // 3600}:{left // 60 % 60:02d}:{left % 60:02d}"
        return f", {3600 / per_job:.1f} jobs/h, {clock} left"

    def close(self) -> None:
        self.bar.close()


def thumbnail(result: Path, outdir: Path) -> Path:
    """A small copy of ``result`` in ``OUTDIR/thumbs`` (made once per result)."""
    thumb = outdir / "thumbs" / result.name
    if not thumb.is_file() or thumb.stat().st_mtime < result.stat().st_mtime:
        thumb.parent.mkdir(exist_ok=True)
        with Image.open(result) as image:
            image.thumbnail((THUMB_SIDE, THUMB_SIDE))
            image.save(thumb)
    return thumb


def contact_sheet(rows: list[Row], outdir: Path) -> Path:
    """``OUTDIR/index.html``: a row per photo, a column per style, in each cell a thumbnail
    per method linking to the result (or the failure's reason)."""
    photos = list(dict.fromkeys(row.content for row in rows))
    styles = list(dict.fromkeys(row.style for row in rows))
    cells: dict[tuple[str, str], list[str]] = {}
    for row in rows:
        output = row.job.output(outdir)
        if row.status == "done" and output.is_file():
            thumb = thumbnail(output, outdir).relative_to(outdir).as_posix()
            item = (
                f'<a href="{html.escape(output.name)}"><img src="{html.escape(thumb)}" '
                f'alt="{html.escape(row.name)}" title="{html.escape(row.method)}"></a>'
            )
        else:
            item = f'<span class="error">{html.escape(row.error or row.status)}</span>'
        cells.setdefault((row.content, row.style), []).append(item)
    head = "".join(f"<th>{html.escape(Path(s).stem)}</th>" for s in styles)
    body = "".join(
        f"<tr><th>{html.escape(Path(p).stem)}</th>"
        + "".join(f"<td>{' '.join(cells.get((p, s), []))}</td>" for s in styles)
        + "</tr>"
        for p in photos
    )
    sheet = outdir / "index.html"
    sheet.write_text(
        "<!doctype html><meta charset=utf-8><title>portrait-stylize batch</title>"
        "<style>body{font-family:sans-serif}td,th{padding:4px;vertical-align:top}"
        ".error{color:#b00;font-size:small}</style>"
        f"<table><tr><th>photo \\ style</th>{head}</tr>{body}</table>\n"
    )
    return sheet


def metrics(row: Row, outdir: Path) -> dict[str, Any]:
    """The evaluate scores of a done job (an ``evaluate_error`` column when they fail)."""
    try:
        values = scores(row.content, row.job.output(outdir), row.style)
    except (PortraitStylizeError, OSError) as exc:
        return {"evaluate_error": str(exc)}
    return {key: values.get(key) for key in LABELS}


def times_csv(rows: list[Row], outdir: Path, evaluate: bool) -> Path:
    """``OUTDIR/batch.csv``: each job's inputs, state, attempts, seconds and error, and its
    evaluate metrics when ``evaluate``."""
    path = outdir / "batch.csv"
    fields = ["name", "content", "style", "method", "status", "attempts", "seconds", "error"]
    if evaluate:
        fields += [*LABELS, "evaluate_error"]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fields, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            values: dict[str, Any] = {name: getattr(row, name) for name in fields[:8]}
            if evaluate and row.status == "done":
                values |= metrics(row, outdir)
            writer.writerow(values)
    return path


def summary(rows: list[Row], outdir: Path, evaluate: bool) -> str:
    """Write the contact sheet and the CSV; the summary's text: counts, then each failed
    job with its reason."""
    sheet = contact_sheet(rows, outdir)
    table = times_csv(rows, outdir, evaluate)
    failed = [row for row in rows if row.status != "done"]
    lines = [
        f"batch: {len(rows) - len(failed)} done, {len(failed)} failed of {len(rows)}; "
        f"contact sheet {sheet}, times {table}"
    ]
    lines += [f"  failed {row.name}: {row.error or row.status}" for row in failed]
    return "\n".join(lines)
