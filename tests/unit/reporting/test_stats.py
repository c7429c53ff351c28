"""The report's statistics on numbers worked out by hand."""

from __future__ import annotations

import math

import pytest

from genre_style.evaluation.stats import paired_difference, summarize


def test_summary_of_known_values():
    s = summarize([0.80, 0.90, 0.85, 0.95, 0.75])
    assert s.n == 5 and s.mean == pytest.approx(0.85)
    assert s.sd == pytest.approx(math.sqrt(0.025 / 4))  # sample sd: squared deviations 0.0025*2 + 0.01*2 + 0, over n-1
    half = 2.776445105 * s.sd / math.sqrt(5)  # t(0.975, 4)
    assert (s.low, s.high) == pytest.approx((0.85 - half, 0.85 + half))
    assert s.format() == "85.0 ± 7.9 [75.2, 94.8] (n=5)"


def test_a_single_run_has_no_spread():
    s = summarize([0.5])
    assert s.n == 1 and s.mean == 0.5 and math.isnan(s.sd) and math.isnan(s.low)
    assert s.format() == "50.0 (n=1)"


def test_paired_difference_uses_only_shared_seeds():
    a = {0: 0.90, 1: 0.92, 2: 0.94, 3: 0.99}
    b = {0: 0.85, 1: 0.86, 2: 0.90, 7: 0.10}
    d = paired_difference(a, b)
    assert d.n == 3 and d.mean == pytest.approx((0.05 + 0.06 + 0.04) / 3)
    assert d.sd == pytest.approx(0.01)
    half = 4.302652730 * 0.01 / math.sqrt(3)  # t(0.975, 2)
    assert (d.low, d.high) == pytest.approx((0.05 - half, 0.05 + half))
    assert paired_difference({0: 1.0}, {1: 1.0}) is None
    with pytest.raises(ValueError):
        summarize([])


def test_the_best_epoch_follows_the_monitor_and_never_picks_nan():
    from genre_style.evaluation.stats import best_epoch

    rows = [
        {"epoch": 0, "val/acc": 0.5, "val/loss": 2.0},
        {"epoch": 1, "val/acc": 0.7, "val/loss": float("nan")},
        {"epoch": 2, "val/acc": 0.7, "val/loss": 1.0},
        {"epoch": 3, "val/acc": float("nan"), "val/loss": 1.5},
    ]
    assert best_epoch(rows, "val/acc", "max") == 1  # the first of equal values, as the checkpoint keeps it
    assert best_epoch(rows, "val/loss", "min") == 2
    assert best_epoch(rows, "val/f1", "max") is None


def test_runs_pair_when_they_score_the_same_clips_whatever_they_train_on():
    from genre_style.reporting.runs import scored_clips
    from genre_style.reporting.sections import short_label

    plain = {"data.clips.clips_per_track": "20"}
    whole_songs = {"data.clips.clips_per_track": "33", "data.split.eval_clips_per_track": "20"}
    assert scored_clips(plain) == scored_clips(whole_songs) == scored_clips({**plain, "data.split.eval_clips_per_track": "None"})
    assert scored_clips({"data.clips.clips_per_track": "33"}) != scored_clips(whole_songs)
    assert "trained on 33 clips a song" in short_label(whole_songs) and "clips" not in short_label(plain)
