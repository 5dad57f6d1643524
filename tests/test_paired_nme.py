"""bench.accuracy.paired_nme: faces paired by image and index, counts of better/worse faces and a
bootstrap interval that covers the mean difference and excludes 0 only for a consistent change."""
import numpy as np
import pytest

from bench.accuracy.paired_nme import paired, row


def _report(nmes):
    """An eval report with one image per face; None = unmatched."""
    return {"per_image": [{"image": f"{k}.jpg", "faces": [{"nme": value}]} for k, value in enumerate(nmes)]}


def test_paired_counts_and_interval():
    rng = np.random.default_rng(0)
    base = rng.uniform(0.03, 0.08, 60)
    better = paired(_report(base), _report(base - 0.002 + rng.normal(0, 0.0005, 60)))
    assert better["faces"] == 60 and better["improved"] == 60 - better["worse"] >= 55
    low, high = better["ci95"]
    assert low < better["mean_difference"] < high < 0  # a consistent gain: the interval excludes 0
    noise = paired(_report(base), _report(base + rng.normal(0, 0.01, 60)))
    assert noise["ci95"][0] < 0 < noise["ci95"][1]  # chance: the interval holds 0
    assert row("x", better).startswith("| x | 60 |")


def test_only_faces_matched_in_both_reports_pair():
    result = paired(_report([0.05, None, 0.04]), _report([0.04, 0.03, None]))
    assert result["faces"] == 1 and result["improved"] == 1 and result["mean_difference"] == pytest.approx(-0.01)
    with pytest.raises(ValueError, match="no matched landmark face in common"):
        paired(_report([None]), _report([0.03]))
