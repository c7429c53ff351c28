"""Background checkpoint writes: what was saved is what is loaded, in order, and failures surface."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from genre_style.checkpoint_io import BackgroundWriteCheckpointIO


def test_a_checkpoint_holds_the_state_at_save_time_not_at_write_time(tmp_path: Path):
    io = BackgroundWriteCheckpointIO()
    weights = torch.zeros(1000)
    io.save_checkpoint({"w": weights, "epoch": 1}, tmp_path / "ckpt" / "last.ckpt")  # creates the folder
    weights += 1  # training goes on while the write may still be pending
    io.save_checkpoint({"w": weights, "epoch": 2}, tmp_path / "ckpt" / "best.ckpt")
    loaded = io.load_checkpoint(tmp_path / "ckpt" / "last.ckpt")  # waits for pending writes
    assert loaded["epoch"] == 1 and torch.equal(loaded["w"], torch.zeros(1000))
    assert torch.equal(io.load_checkpoint(tmp_path / "ckpt" / "best.ckpt")["w"], torch.ones(1000))
    io.teardown()
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == ["best.ckpt", "last.ckpt"]  # no partial files


def test_writes_and_removals_keep_their_order(tmp_path: Path):
    io = BackgroundWriteCheckpointIO()
    for epoch in range(5):
        io.save_checkpoint({"epoch": epoch}, tmp_path / "last.ckpt")
    io.remove_checkpoint(tmp_path / "last.ckpt")
    io.save_checkpoint({"epoch": 5}, tmp_path / "best.ckpt")
    io.teardown()
    assert not (tmp_path / "last.ckpt").exists()
    assert torch.load(tmp_path / "best.ckpt")["epoch"] == 5


def test_a_failed_write_is_raised_at_teardown_and_the_old_file_survives(tmp_path: Path):
    io = BackgroundWriteCheckpointIO()
    (tmp_path / "taken.ckpt").mkdir()  # the rename onto a folder fails in the writer thread
    io.save_checkpoint({"epoch": 1}, tmp_path / "taken.ckpt")
    with pytest.raises(OSError):
        io.teardown()
    assert (tmp_path / "taken.ckpt").is_dir() and list(tmp_path.iterdir()) == [tmp_path / "taken.ckpt"]


def test_a_failed_write_stops_the_next_save(tmp_path: Path):
    io = BackgroundWriteCheckpointIO()
    (tmp_path / "taken.ckpt").mkdir()
    io.save_checkpoint({"epoch": 1}, tmp_path / "taken.ckpt")
    io._pending[-1].exception()  # let the write finish (and fail)
    with pytest.raises(OSError):
        io.save_checkpoint({"epoch": 2}, tmp_path / "last.ckpt")
    io.teardown()
