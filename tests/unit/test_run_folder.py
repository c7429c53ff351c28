"""The run folder (genre_style/run_folder.py) in process: where a run's record, artifacts and resume checkpoint go, what
its status says as the run goes, which run `resume=last` continues, and the resumes it refuses before training."""

from __future__ import annotations

import csv
import json
import os
import signal
from pathlib import Path

import pytest
import torch
from omegaconf import DictConfig, OmegaConf

from genre_style.data.audio import ClipSpec
from genre_style.data.datamodule import GenreDataModule
from genre_style.errors import UserError
from genre_style.preemption import Preempted
from genre_style.run_folder import RunFolder, find_resume
from tests import checkpoints
from tests.conftest import labelled_clips


def _cfg(root: Path, job: str = "new", **changes: object) -> DictConfig:
    """A run's resolved config as training sees it: what is learned, the budget, and where things go."""
    cfg = OmegaConf.create(
        {
            "seed": 0,
            "model": {"_target_": "genre_style.models.dsae.DeepSoftmaxAutoencoder", "lr": 0.001, "gamma": 0.5},
            "data": {"source": {"root": "/data/gtzan"}, "split": {"mode": "track"}, "store": {"workers": 2}},
            "trainer": {"max_epochs": 10},
            "callbacks": {"early_stopping": {"patience": 5}},
            "paths": {"output_root": str(root), "output_dir": str(root / "runs" / job), "log_dir": "${paths.output_dir}/logs"},
            "resume": None,
        }
    )
    for key, value in changes.items():
        OmegaConf.update(cfg, key, value)
    return cfg


def _datamodule() -> GenreDataModule:
    table = labelled_clips(20, 2, (5,), ("classical", "jazz"))
    table.skipped = [{"path": "jazz/broken.wav", "reason": "not audio"}]
    dm = GenreDataModule.from_table(table, split={"mode": "track"}, loader={"batch_size": 4}, seed=0)
    dm.setup("fit")
    return dm


def _interrupted_run(root: Path, name: str, cfg: DictConfig | None = None, mtime: float | None = None) -> RunFolder:
    """A run stopped after writing its inputs and a resume checkpoint (a genre-style one: find_resume reads it)."""
    folder = RunFolder(root / "runs" / name)
    folder.update_info(status="running")
    if cfg is not None:
        folder.artifacts.mkdir(parents=True, exist_ok=True)
        (folder.artifacts / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
    folder.last_checkpoint.parent.mkdir(parents=True, exist_ok=True)
    checkpoints.save(checkpoints.build("dsae"), ClipSpec(), folder.last_checkpoint)
    if mtime is not None:
        os.utime(folder.last_checkpoint, (mtime, mtime))
    folder.interrupted(Preempted(signal.SIGTERM))
    return folder


def test_a_runs_life_is_written_in_its_folder(tmp_path):
    folder = RunFolder(tmp_path / "runs" / "2026-01-01_00-00-00")
    assert folder.info == {} and not folder.resumable  # nothing yet: no run_info.json, no folder
    folder.interrupted(RuntimeError("before anything"))  # a run that never made its folder leaves none
    assert not folder.path.exists()

    cfg = _cfg(tmp_path)
    folder.update_info(status="running", mlflow_run_id="abc")
    folder.record_inputs(cfg, _datamodule())
    info = folder.info
    assert info["status"] == "running" and info["mlflow_run_id"] == "abc" and "math" in info  # fields merge, never replace
    assert OmegaConf.load(folder.artifacts / "config.yaml").paths.log_dir == str(tmp_path / "runs" / "new" / "logs")
    with (folder.artifacts / "data/split_tracks.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(r["track_id"] for r in rows) == sorted(f"t{i}" for i in range(20))  # every track once, with its split
    assert {r["split"] for r in rows} == {"train", "val", "test"} and all(r["clips"] == "2" for r in rows)
    with (folder.artifacts / "data/skipped_files.csv").open() as handle:
        assert list(csv.DictReader(handle)) == [{"path": "jazz/broken.wav", "reason": "not audio"}]

    folder.last_checkpoint.parent.mkdir(parents=True)
    folder.last_checkpoint.write_bytes(b"resume")
    stop = Preempted(signal.SIGTERM)
    folder.interrupted(stop)
    assert stop.resume_folder == folder.path  # the stop message can name the folder to resume
    assert folder.info["status"] == "interrupted: Preempted: stopped by SIGTERM" and folder.resumable

    best = tmp_path / "best-epoch=3.ckpt"
    best.write_bytes(b"best")
    folder.finish(str(best))
    assert (folder.artifacts / "checkpoints/best.ckpt").read_bytes() == b"best" and not best.exists()
    assert not folder.last_checkpoint.exists() and folder.info["status"] == "finished" and not folder.resumable
    assert folder.info["mlflow_run_id"] == "abc"


def test_no_resume_asked_is_none(tmp_path):
    assert find_resume(_cfg(tmp_path)) is None


def test_resume_last_continues_the_newest_interrupted_run(tmp_path):
    older = _interrupted_run(tmp_path, "older", mtime=1_000_000)
    newer = _interrupted_run(tmp_path, "newer", mtime=2_000_000)
    finished = RunFolder(tmp_path / "runs" / "finished")
    finished.update_info(status="finished")  # newest of all, but done: nothing to continue
    assert older.resumable and newer.resumable and not finished.resumable
    found = find_resume(_cfg(tmp_path, resume="last"))
    assert found is not None and found.path == newer.path
    assert json.loads((newer.path / "run_info.json").read_text())["status"].startswith("interrupted")


def test_resume_last_with_nothing_to_continue_names_the_folder_it_searched(tmp_path):
    RunFolder(tmp_path / "runs" / "done").update_info(status="finished")
    with pytest.raises(UserError, match=f"no interrupted run with a checkpoint under {tmp_path}/runs"):
        find_resume(_cfg(tmp_path, resume="last"))


def test_a_folder_without_a_resume_checkpoint_is_refused(tmp_path):
    RunFolder(tmp_path / "runs" / "crashed").update_info(status="running")
    with pytest.raises(UserError, match="checkpoints/last.ckpt does not exist") as raised:
        find_resume(_cfg(tmp_path, resume=str(tmp_path / "runs" / "crashed")))
    assert "resume=last" in raised.value.fix


def test_a_resume_may_change_the_budget_and_the_paths_but_not_what_is_learned(tmp_path):
    started = _cfg(tmp_path, job="first")
    run = _interrupted_run(tmp_path, "first", started)
    # The new job has its own output_dir (and paths derived from it): read as the resumed run's own.
    budget = _cfg(tmp_path, job="second", resume=str(run.path), **{"trainer.max_epochs": 20, "data.store.workers": 8})
    assert find_resume(budget).path == run.path
    learned = _cfg(tmp_path, job="second", resume=str(run.path), **{"model.lr": 0.01, "seed": 1})
    with pytest.raises(UserError) as raised:
        find_resume(learned)
    assert raised.value.problem.splitlines()[1:] == [
        "  model.lr: 0.001 when the run started, 0.01 now",
        "  seed: 0 when the run started, 1 now",
    ]


def test_a_resume_checkpoint_that_could_run_code_is_refused_before_lightning_reads_it(tmp_path):
    run = _interrupted_run(tmp_path, "tampered")
    torch.save({"genre_style": {}, "payload": Path("anything")}, run.last_checkpoint)  # a pickled object, not weights
    with pytest.raises(UserError, match="refused, loading it could run code"):
        find_resume(_cfg(tmp_path, resume=str(run.path)))
