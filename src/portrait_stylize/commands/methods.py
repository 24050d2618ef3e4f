"""``portrait-stylize methods [NAME ...] [--json]``: what each preset is, where it comes
from, the settings it changes and what to know before using it."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..methods import METHODS, Settings, resolve_settings, settings_json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "List the methods (presets): description, source, the settings each changes from "
        "the common defaults (`portrait-stylize --help` lists them), what --paper-exact "
        "changes, and notes."
    )
    parser.add_argument("names", nargs="*", metavar="NAME", help="methods (default: all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")


def describe(name: str) -> dict[str, Any]:
    """One method as JSON: name, description, source, the settings that differ from the
    common defaults, those ``--paper-exact`` changes on top, notes."""
    own = settings_json(resolve_settings(name))  # an unknown name: SettingsError
    method = METHODS[name]
    common = settings_json(Settings())
    exact = settings_json(resolve_settings(name, {"paper_exact": True}))
    return {
        "name": name,
        "description": method.description,
        "source": method.paper,
        "settings": {k: v for k, v in own.items() if k != "method" and v != common[k]},
        "paper_exact": {k: v for k, v in exact.items() if k != "paper_exact" and v != own[k]},
        "notes": method.notes,
    }


def as_options(values: dict[str, Any]) -> str:
    """Setting values as the CLI's options: '--lr 0.02 --style-layers relu3_1 relu4_1'
    (a boolean setting is off by default, so one that differs is a bare flag)."""
    words = []
    for name, value in values.items():
        flag = "--" + name.replace("_", "-")
        if isinstance(value, bool):
            words.append(flag)
        else:
            shown = " ".join(map(str, value)) if isinstance(value, list) else str(value)
            words.append(f"{flag} {shown}")
    return " ".join(words)


def run(args: argparse.Namespace) -> int:
    rows = [describe(name) for name in args.names or METHODS]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        print(f"{row['name']}: {row['description']}")
        if row["source"]:
            print(f"  source: {row['source']}")
        for label in ("settings", "paper_exact"):
            if row[label]:
                print(f"  {label.replace('_', '-')}: {as_options(row[label])}")
        for note in row["notes"]:
            print(f"  - {note}")
        print()
    return 0
