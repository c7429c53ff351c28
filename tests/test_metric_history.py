"""MetricHistory's checkpoint state: what a resume rebuilds the learning curves and MLflow backfill from."""

import math

import torch

from genre_style.callbacks.metric_history import MetricHistory


def test_history_state_is_one_string_that_round_trips_exactly_and_older_checkpoints_still_load(tmp_path):
    rows = [
        {"epoch": 0, "step": 23, "train/loss": 0.1 + 0.2, "val/acc": 0.4370000064373016, "val/ce": float("nan")},
        {"epoch": 1, "step": 47, "train/loss": 1.2345678901234567e-30, "val/acc": 1.0, "val/ce": 0.5},
    ]
    older = MetricHistory()
    older.load_state_dict({"history": rows})  # the form checkpoints had before: a list of dicts

    state = older.state_dict()
    assert [type(v) for v in state.values()] == [str]  # one object to pickle, however many epochs
    torch.save({"callbacks": {"MetricHistory": state}}, tmp_path / "last.ckpt")
    restored = MetricHistory()
    restored.load_state_dict(torch.load(tmp_path / "last.ckpt", weights_only=True)["callbacks"]["MetricHistory"])

    assert [list(r) for r in restored.history] == [list(r) for r in rows]
    for got, want in zip(restored.history, rows):
        for key, value in want.items():
            assert got[key] == value or (math.isnan(got[key]) and math.isnan(value)), key
    assert restored.state_dict() == state
