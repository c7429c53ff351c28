"""The on-disk clip store: same clips and same training as in memory, a killed preprocessing resumes to the same
store, and what it cannot serve is one line."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from genre_style.data.audio import ClipSpec
from genre_style.data.clip_store import build_or_resume
from genre_style.data.corpus import discover_tracks
from genre_style.data.datamodule import GenreDataModule
from genre_style.data.preprocess import build_clip_table
from genre_style.errors import UserError
from tests.conftest import FAST_RUN, REPO, run_cli

GENRES = ["classical", "jazz", "metal", "pop"]
SPEC = ClipSpec(22050, 20000, 20000, 20, 40, "logmel", 2048, 1024, 40, 20)


def _store_files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if not p.name.startswith(".")}


def test_a_store_reads_the_clips_the_table_holds_in_any_order(tmp_path, small_corpus):
    tracks = discover_tracks(small_corpus, GENRES)
    store, complete = build_or_resume(tracks, GENRES, SPEC, tmp_path / "s", workers=1, progress=False, part_tracks=5)
    table = build_clip_table(tracks, GENRES, SPEC, workers=1, progress=False)
    assert not complete and len(list((tmp_path / "s").glob("part-*.npy"))) == 5
    assert np.array_equal(store.labels, table.labels) and np.array_equal(store.track_index, table.track_index)
    assert store.track_ids == table.track_ids
    order = np.random.default_rng(0).permutation(len(table))  # across every part, unsorted
    features = table.features.reshape(len(table), *SPEC.feature_shape)
    assert np.array_equal(store.read(order), features[order])
    again, complete = build_or_resume(tracks, GENRES, SPEC, tmp_path / "s", workers=1, progress=False, part_tracks=5)
    assert complete and np.array_equal(again.read(order[:7]), features[order[:7]])


# A preprocessing that takes 0.3 s a track (so it can be killed between parts), in a process of its own.
SLOW_BUILD = """
import sys, time
import genre_style.data.preprocess as preprocess
from genre_style.data.audio import ClipSpec
from genre_style.data.corpus import discover_tracks
from genre_style.data.clip_store import build_or_resume
extract = preprocess._extract
preprocess._extract = lambda job: (time.sleep(0.3), extract(job))[1]
spec = ClipSpec(22050, 20000, 20000, 20, 40, "logmel", 2048, 1024, 40, 20)
genres = ["classical", "jazz", "metal", "pop"]
build_or_resume(discover_tracks(sys.argv[1], genres), genres, spec, __import__("pathlib").Path(sys.argv[2]), 1, False, 4)
"""


@pytest.mark.slow
def test_a_killed_preprocessing_resumes_and_ends_with_the_same_store(tmp_path, small_corpus):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    process = subprocess.Popen([sys.executable, "-c", SLOW_BUILD, str(small_corpus), str(killed)], cwd=REPO)
    deadline = time.monotonic() + 120
    while not (killed / "part-00001.json").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    process.kill()
    process.wait()
    assert (killed / "part-00001.json").exists() and not (killed / "index.json").exists()  # killed halfway
    written = {p.name: p.stat().st_mtime_ns for p in killed.glob("part-*")}
    tracks = discover_tracks(small_corpus, GENRES)
    resumed, complete = build_or_resume(tracks, GENRES, SPEC, killed, workers=1, progress=False, part_tracks=4)
    assert not complete
    assert all((killed / name).stat().st_mtime_ns == mtime for name, mtime in written.items())  # kept, not redone
    build_or_resume(tracks, GENRES, SPEC, whole, workers=1, progress=False, part_tracks=4)
    assert _store_files(killed) == _store_files(whole)  # byte for byte
    assert len(resumed) == 72 and json.loads((killed / "index.json").read_text())["parts"] == 6


def test_a_damaged_store_is_rebuilt(tmp_path, small_corpus):
    tracks = discover_tracks(small_corpus, GENRES)
    build_or_resume(tracks, GENRES, SPEC, tmp_path / "s", workers=1, progress=False, part_tracks=8)
    part = tmp_path / "s" / "part-00001.npy"
    part.write_bytes(part.read_bytes()[:-4000])
    store, complete = build_or_resume(tracks, GENRES, SPEC, tmp_path / "s", workers=1, progress=False, part_tracks=8)
    assert not complete and len(store) == 72 and store.read([71]).shape == (1, *SPEC.feature_shape)


def _module(root: Path, cache: Path, store: str, loader: dict | None = None, **store_settings) -> GenreDataModule:
    """Standardised log-mel clips of every genre of `root`, kept in `store` mode; `loader` and `store_settings`
    add to the data.loader and data.store settings."""
    return GenreDataModule(
        source={"root": str(root), "genres": "all"},
        clips={"features": "logmel"},
        loader={"batch_size": 8, "minibatches_per_step": 2, "standardize": True, **(loader or {})},
        store={"mode": store, "cache_dir": str(cache), "workers": 1, **store_settings},
        progress=False,
    )


def test_the_disk_store_serves_the_batches_memory_does(tmp_path, small_corpus):
    memory, disk = _module(small_corpus, tmp_path, "memory"), _module(small_corpus, tmp_path, "disk")
    memory.setup()
    disk.setup()
    assert disk.store is not None and memory.store is None
    for split in ("train", "val", "test"):
        for a, b in zip(memory.eval_dataloader(split), disk.eval_dataloader(split)):
            assert all(torch.equal(x, y) for x, y in zip(a, b))
        assert torch.equal(memory.split_features(split), disk.split_features(split))
    for a, b in zip(memory.train_dataloader(), disk.train_dataloader()):  # the same shuffle, minibatch by minibatch
        assert all(torch.equal(x, y) for pair in zip(a, b) for x, y in zip(*pair))


def test_auto_goes_to_disk_past_the_memory_budget(tmp_path, small_corpus):
    small = _module(small_corpus, tmp_path, "auto")
    small.setup()
    tight = _module(small_corpus, tmp_path, "auto", memory_budget_mb=0.1)  # 24 songs x 20 clips x 40 x 20 floats: 1.5 MB
    tight.setup()
    assert small.store is None and tight.store is not None


def test_what_the_disk_store_cannot_serve_is_one_line(tmp_path, small_corpus):
    with pytest.raises(UserError, match="data.loader.random_crop and data.source.unlabelled need the clips in memory"):
        _module(small_corpus, tmp_path, "disk", loader={"random_crop": True}).setup()
    with pytest.raises(UserError, match="unknown data.store.mode='ssd'"):
        _module(small_corpus, tmp_path, "ssd")


@pytest.mark.slow
def test_a_training_run_on_the_disk_store_repeats_the_in_memory_run_to_the_bit(tmp_path):
    args = [*FAST_RUN, "data.clips.features=logmel", "data.loader.standardize=true", "model=dsae", "encoder=logmel_cnn"]
    metrics = {}
    for store in ("memory", "disk"):
        result = run_cli([*args, f"data.store.mode={store}"], tmp_path / store)
        assert result.returncode == 0, result.stderr[-3000:]
        (report,) = (tmp_path / store).glob("runs/*/artifacts/report/final_metrics.json")
        metrics[store] = json.loads(report.read_text())
        (checkpoint,) = (tmp_path / store).glob("runs/*/artifacts/checkpoints/best.ckpt")
        metrics[store]["weights"] = torch.load(checkpoint, map_location="cpu", weights_only=False)["state_dict"]
    assert any((tmp_path / "disk").glob("**/store-*/index.json"))
    weights = metrics["memory"].pop("weights"), metrics["disk"].pop("weights")
    assert metrics["memory"] == metrics["disk"]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def test_each_ddp_rank_reads_its_own_share_of_the_store(tmp_path, small_corpus):
    """What Lightning does to the train loader under DDP (its sampler wrapped, one process a rank, seeded alike):
    each rank's batches are disjoint clips of the train split, together all of it."""
    from lightning.fabric.utilities.distributed import DistributedSamplerWrapper

    shares = []
    for rank in (0, 1):
        dm = _module(small_corpus, tmp_path, "disk", loader={"minibatches_per_step": 1})
        dm.setup()
        loader = dm.train_dataloader()
        shares.append(torch.cat(list(DistributedSamplerWrapper(loader.sampler, num_replicas=2, rank=rank, shuffle=False))))
    assert not set(shares[0].tolist()) & set(shares[1].tolist())
    assert sorted(shares[0].tolist() + shares[1].tolist()) == list(range(len(dm.stored["train"])))
