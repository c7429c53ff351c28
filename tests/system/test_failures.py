"""Failure modes, each done for real: kills, broken files, a tracking server that goes away, bad numbers."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import optuna
import pytest
import soundfile as sf

from genre_style.data.audio import ClipSpec
from genre_style.data.corpus import discover_tracks
from genre_style.data.preprocess import build_clip_table
from genre_style.sweeps.storage import open_storage
from tests.conftest import FAST_RUN, REPO, run_cli, write_wav
from tests.servers import free_port

pytestmark = pytest.mark.slow  # real processes (the CLI, servers): `make test-fast` leaves them out

LONG = [a for a in FAST_RUN if not a.startswith("trainer.max_epochs")] + ["callbacks.early_stopping.patience=1000"]


def _start(args, out, env=None, module="genre_style.train"):
    full_env = {**os.environ, "GENRE_STYLE_OUTPUTS": str(out), "PYTHONUNBUFFERED": "1", **(env or {})}
    log = open(out / f"{module}.{time.time_ns()}.log", "w")
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=REPO,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(predicate, timeout=120.0, proc=None):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the process ended (rc {proc.returncode}) before the condition was met")
        time.sleep(0.05)
    raise AssertionError("timed out")


def _kill(proc):
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


# Kills, SIGTERM and SIGINT during training, and exact resume: tests/system/test_preemption.py.


def test_resume_without_an_interrupted_run_says_so(tmp_path):
    result = run_cli([*FAST_RUN, "resume=last"], tmp_path)
    assert result.returncode == 2 and "no interrupted run" in result.stderr and "Traceback" not in result.stderr


def test_killed_sweep_continues_and_marks_the_interrupted_trial_failed(tmp_path):
    # 20 epochs a trial: trial 1 is caught once its sweeper owns it, before its data set-up, seconds before it ends
    args = ["-m", "hparams_search=dsae_optuna", *LONG, "trainer.max_epochs=20", "hydra.sweeper.n_trials=3"]
    journal = tmp_path / "optuna" / "dsae_optuna.journal"

    def second_trial_running():
        if not journal.exists():
            return False
        try:
            trials = optuna.load_study(study_name="dsae_optuna", storage=open_storage(str(journal))).trials
        except KeyError:  # the journal file exists, the study's record is not written yet
            return False
        # trial 1 is running and its sweeper has recorded itself as the owner (right after asking for it)
        return len(trials) == 2 and trials[0].state == optuna.trial.TrialState.COMPLETE and "sweeper" in trials[1].user_attrs

    proc = _start(args, tmp_path)
    _wait_for(second_trial_running, proc=proc)
    _kill(proc)
    again = run_cli(args, tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "interrupted" in again.stdout + again.stderr
    trials = optuna.load_study(study_name="dsae_optuna", storage=open_storage(str(journal))).trials
    assert [t.state.name for t in trials] == ["COMPLETE", "FAIL", "COMPLETE"]
    assert trials[0].params != trials[2].params  # the finished trial was not rerun


def test_killed_preprocessing_leaves_no_cache_and_the_next_run_rebuilds(tmp_path):
    rng = np.random.default_rng(0)
    corpus = tmp_path / "corpus"
    for genre in ("jazz", "metal"):
        for i in range(20):  # 40 tracks x 30 s through the log-mel front-end: seconds of work to interrupt
            write_wav(corpus / genre / f"{genre}.{i:05d}.wav", 0.1 * rng.standard_normal(22050 * 30))
    cache = tmp_path / "cache"
    script = (
        "from genre_style.data.corpus import discover_tracks; from genre_style.data.audio import ClipSpec; "
        "from genre_style.data.preprocess import load_or_build; g=['jazz','metal']; "
        f"load_or_build(discover_tracks({str(corpus)!r}, g), g, ClipSpec(features='logmel'), {str(cache)!r}, workers=1)"
    )
    log = tmp_path / "preprocess.log"
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=REPO, start_new_session=True, stderr=log.open("w"), stdout=subprocess.DEVNULL
    )
    _wait_for(lambda: "preprocessing audio" in log.read_text(), proc=proc)  # its progress bar is up: mid-way
    _kill(proc)
    assert not list(cache.glob("clips-*.npz"))  # nothing that could be mistaken for a cache
    from genre_style.data.preprocess import load_or_build

    table, path, hit = load_or_build(
        discover_tracks(corpus, ["jazz", "metal"]),
        ["jazz", "metal"],
        ClipSpec(features="logmel"),
        cache,
        workers=2,
        progress=False,
    )
    assert not hit and path.exists() and len(table) == 40 * 20


def test_tracking_server_lost_mid_run_finishes_and_keeps_everything(tmp_path):
    EPOCHS = 30
    port = free_port()
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "mlflow"),
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--backend-store-uri",
            f"sqlite:///{tmp_path / 'server.db'}",
            "--default-artifact-root",
            str(tmp_path / "server-artifacts"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:

        def healthy():
            try:
                return urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).status == 200
            except OSError:
                return False

        _wait_for(healthy, timeout=90, proc=server)
        out = tmp_path / "outputs"
        out.mkdir()
        # the server dies right after the first epoch's checkpoint; the run logs EPOCHS - 1 more epochs into nothing
        # (MLflow gives up on a dead server at once: genre_style/tracking/mlflow_store.py)
        proc = _start([*LONG, f"trainer.max_epochs={EPOCHS}"], out, env={"MLFLOW_TRACKING_URI": f"http://127.0.0.1:{port}"})
        _wait_for(lambda: list(out.glob("runs/*/checkpoints/last.ckpt")), proc=proc)
        _kill(server)  # the server goes away mid-training
        assert proc.wait(timeout=240) == 0
    finally:
        if server.poll() is None:
            _kill(server)
    output = "".join(p.read_text() for p in out.glob("*.log"))
    assert "Nothing is lost" in output
    artifacts = next(out.glob("runs/*/artifacts"))
    metrics = json.loads((artifacts / "report/final_metrics.json").read_text())
    history = json.loads((artifacts / "report/history.json").read_text())
    assert "test/acc" in metrics and len(history) == EPOCHS and (artifacts / "checkpoints/best.ckpt").exists()


def test_bad_audio_is_used_correctly_or_skipped_and_listed(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "corpus"
    for genre in ("jazz", "metal"):
        write_wav(root / genre / f"{genre}.00000.wav", 0.1 * rng.standard_normal(22050 * 2))
    write_wav(root / "jazz" / "stereo.wav", 0.1 * rng.standard_normal((22050 * 2, 2)))
    write_wav(root / "jazz" / "rate8k.wav", 0.1 * rng.standard_normal(8000 * 2), 8000)
    write_wav(root / "jazz" / "rate48k.wav", 0.1 * rng.standard_normal(48000 * 2), 48000)
    write_wav(root / "metal" / "half_second.wav", 0.1 * rng.standard_normal(11025))
    full = write_wav(root / "metal" / "truncated.wav", 0.1 * rng.standard_normal(22050 * 3)).read_bytes()
    (root / "metal" / "truncated.wav").write_bytes(full[: len(full) // 2])  # a download cut short: header says 3 s
    (root / "metal" / "empty.wav").write_bytes(b"")
    (root / "metal" / "text.wav").write_text("this is not audio")
    nan = np.zeros(22050 * 2, dtype=np.float32)
    nan[5] = np.nan
    sf.write(root / "metal" / "nan.wav", nan, 22050, subtype="FLOAT")
    tracks = discover_tracks(root, ["jazz", "metal"])
    table = build_clip_table(tracks, ["jazz", "metal"], ClipSpec(), workers=2, progress=False)
    used = dict(zip(table.track_ids, np.bincount(table.track_index)))
    skipped = {Path(s["path"]).stem: s["reason"] for s in table.skipped}
    assert used["stereo"] == 2 and used["rate8k"] == 2 and used["rate48k"] == 2  # mixed down / resampled: 2 s each
    assert used["truncated"] == 1  # the 1.5 s that are there
    assert set(skipped) == {"half_second", "empty", "text", "nan"}
    assert "too short" in skipped["half_second"] and "NaN" in skipped["nan"] and "unreadable" in skipped["text"]


def test_a_diverging_loss_stops_the_run_with_a_clear_error(tmp_path):
    result = run_cli([*FAST_RUN, "lr=1e30"], tmp_path)
    assert result.returncode == 2 and "training diverged" in result.stderr and "lr" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_diverging_trial_is_marked_failed_and_the_sweep_goes_on(tmp_path):
    result = run_cli(
        [
            "-m",
            "hparams_search=dsae_optuna",
            *FAST_RUN,
            "hydra.sweeper.n_trials=2",
            "hydra.sweeper.study_name=nan",
            "lr=choice(1e30,1e-3)",
            "hydra.sweeper.sampler._target_=optuna.samplers.BruteForceSampler",
            "~hydra.sweeper.sampler.n_startup_trials",
            "hydra.sweeper.params=null",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    trials = optuna.load_study(study_name="nan", storage=open_storage(str(tmp_path / "optuna" / "nan.journal"))).trials
    assert sorted((t.params["lr"], t.state.name) for t in trials) == [(1e-3, "COMPLETE"), (1e30, "FAIL")]


def test_an_output_folder_that_cannot_be_written_stops_before_anything(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli([*FAST_RUN], blocker / "outputs")
    assert result.returncode == 2 and "cannot write to the output folder" in result.stderr and "Traceback" not in result.stderr


def test_too_little_free_space_stops_before_anything(tmp_path):
    result = run_cli([*FAST_RUN, "paths.min_free_mb=1000000000"], tmp_path)
    assert result.returncode == 2 and "MB free" in result.stderr and not list(tmp_path.glob("runs/*/artifacts"))
