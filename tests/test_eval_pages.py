"""The evaluation scripts' page plumbing: which inputs may be pictured, how goals are counted."""

from __future__ import annotations

import sys
from argparse import Namespace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))

import paper1
import paper2


def row(
    identity: list[float], stylization: float, ratio: float, rank1: float = 1.0
) -> dict[str, object]:
    """A scored result with the given per-face identities, face stylization, style ratio
    and rank-1 identification rate."""
    return {
        "identity": sum(identity) / len(identity),
        "identity_per_face": identity,
        "rank1": rank1,
        "nme": 0.01,
        "stylization": stylization,
        "style": 500.0 * ratio,
        "ratio": ratio,
        "seconds": 10.0,
    }


def test_only_the_public_domain_inputs_may_be_pictured() -> None:
    # the shared data's README: these two photos are for testing only, Matisse is PD in the US
    for name in ("closeup_portrait", "group_six_faces", "woman_with_hat_matisse"):
        assert name not in paper1.PUBLIC_DOMAIN
    assert {"astronaut", "starry_night"} <= paper1.PUBLIC_DOMAIN


def test_every_shared_pair_is_evaluated_by_default() -> None:
    assert len(paper2.PAIRS) == len(paper2.CONTENTS) * len(paper1.STYLES) == 16


def test_goals_count_pairs_where_every_face_meets_them() -> None:
    good, one_face_short = row([0.9, 0.86], 0.85, 0.5), row([0.95, 0.8], 0.79, 0.9, 0.5)
    scores = {}
    for pair, default in (("a:x", good), ("b:y", one_face_short)):
        for label in paper2.VARIANTS:
            scores[pair, label] = default if label == "default" else row([0.1], 1.0, 1.0)
    args = Namespace(size=256, initial=150, iterations=100, pairs=list(paper2.PAIRS))
    page = paper2.markdown(scores, args, [])
    assert "### Averaged over the 2 pairs with every run" in page
    assert "- identity ≥ 0.85 on every face: 1 of 2" in page  # 0.875 mean, but one face 0.8
    assert "- rank-1 identification kept on every face: 1 of 2" in page
    assert "- face stylization ≥ 0.8: 1 of 2" in page
    assert "- style ≤ 0.8 x the feed-forward network's: 1 of 2" in page
    assert "| b:y | default | 0.875 | 0.50 | 0.010 | 0.79 | 450 | 0.90 | 10 | 0.95, 0.80 |" in page
    painting = page.split("goals, pairs where portrait-painting meets them:")[1].split("###")[0]
    assert "- identity ≥ 0.85 on every face: 0 of 2" in painting
    assert "- face stylization ≥ 0.8: 2 of 2" in painting


def test_pairs_run_without_the_baselines_are_averaged_apart() -> None:
    scores = {("a:x", label): row([0.9], 0.5, 0.5) for label in paper2.VARIANTS}
    scores["b:y", "default"] = scores["b:y", "instant"] = row([0.5], 0.9, 1.0)
    args = Namespace(size=256, initial=150, iterations=100, pairs=["a:x", "b:y@default,instant"])
    page = paper2.markdown(scores, args, [])
    assert "--pairs a:x b:y@default,instant`" in page
    assert "### Averaged over the 1 pairs with every run" in page
    table = page.split("### Averaged over the 2 pairs")[1].split("###")[0]
    assert "| default | 0.700 |" in table and "crowson" not in table  # (0.9 + 0.5) / 2
    assert "| b:y | crowson |" not in page
