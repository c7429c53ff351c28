"""Interruptions a scheduler really sends, done for real: SIGTERM, SIGINT and SIGKILL to the training CLI, then
`resume=`; several first runs at once on a new store; what a resume may change."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from tests.conftest import FAST_RUN, REPO, run_cli

pytestmark = pytest.mark.slow  # real processes: `make test-fast` leaves them out

# 30 short epochs, a resume checkpoint after each, no early stop: a signal sent within half a second of the first
# checkpoint lands mid-training (29 epochs are left).
EPOCHS = 30
RUN = [a for a in FAST_RUN if not a.startswith("trainer.max_epochs")] + [
    f"trainer.max_epochs={EPOCHS}",
    "callbacks.early_stopping.patience=1000",
    "callbacks.last_checkpoint.min_interval_s=0",
]


def _start(args: list[str], out: Path) -> subprocess.Popen:
    env = {**os.environ, "GENRE_STYLE_OUTPUTS": str(out), "PYTHONUNBUFFERED": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    out.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [sys.executable, "-m", "genre_style.train", *args],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _wait_for(pattern: str, out: Path, proc: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.time() + timeout
    while not list(out.glob(pattern)):
        assert proc.poll() is None, f"the run ended (rc {proc.returncode}) before {pattern} appeared"
        assert time.time() < deadline, f"no {pattern} after {timeout} s"
        time.sleep(0.02)


def _results(out: Path) -> tuple[dict, dict]:
    (folder,) = [p.parent for p in out.glob("runs/*/run_info.json")]  # a resumed run goes on in its own folder
    metrics = json.loads((folder / "artifacts/report/final_metrics.json").read_text())
    weights = torch.load(folder / "artifacts/checkpoints/best.ckpt", weights_only=True)["state_dict"]
    return metrics, weights


def _store(out: Path) -> tuple[MlflowClient, list]:
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    return client, client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, dict]:
    out = tmp_path_factory.mktemp("uninterrupted")
    result = run_cli(RUN, out)
    assert result.returncode == 0, result.stderr[-3000:]
    return _results(out)


@pytest.mark.parametrize(
    "sig, wait_for, delay, exit_code",
    [
        (signal.SIGTERM, "runs/*/checkpoints/last.ckpt", 0.5, 143),
        (signal.SIGINT, "runs/*/checkpoints/last.ckpt", 0.5, 130),
        (signal.SIGKILL, "runs/*/checkpoints/last.ckpt", 0.0, -9),  # early: right after the first checkpoint
        (signal.SIGKILL, "runs/*/checkpoints/last.ckpt", 0.4, -9),  # mid-training, most likely mid-epoch
        (signal.SIGKILL, "runs/*/artifacts/plots", 0.0, -9),  # during the evaluation after training
    ],
    ids=["sigterm", "sigint", "sigkill-early", "sigkill-mid", "sigkill-evaluation"],
)
def test_an_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, uninterrupted, sig, wait_for, delay, exit_code):
    proc = _start(RUN, tmp_path)
    _wait_for(wait_for, tmp_path, proc)
    time.sleep(delay)
    os.killpg(proc.pid, sig) if sig == signal.SIGKILL else proc.send_signal(sig)
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == exit_code, output[-3000:]
    (folder,) = [p.parent for p in tmp_path.glob("runs/*/run_info.json")]
    if sig != signal.SIGKILL:  # pre-emption: a KILLED run and the command that continues it
        assert "Traceback" not in output and f"resume={folder}" in output, output[-3000:]
        assert [r.info.status for r in _store(tmp_path)[1]] == ["KILLED"]

    resumed = run_cli([*RUN, f"resume={folder}"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    metrics, weights = _results(tmp_path)
    reference_metrics, reference_weights = uninterrupted
    assert metrics == reference_metrics  # to the bit, on CPU
    assert weights.keys() == reference_weights.keys()
    assert all(torch.equal(weights[k], reference_weights[k]) for k in weights)
    client, runs = _store(tmp_path)
    assert [r.info.status for r in runs] == ["FINISHED"]  # one run, continued
    for key in runs[0].data.metrics:
        steps = [m.step for m in client.get_metric_history(runs[0].info.run_id, key)]
        assert len(steps) == len(set(steps)), f"{key} logged twice at a step: {sorted(steps)}"
    assert len(client.get_metric_history(runs[0].info.run_id, "train/loss")) == EPOCHS


def test_first_runs_started_together_on_a_new_store_all_finish(tmp_path):
    procs = [_start([*FAST_RUN, f"seed={seed}"], tmp_path) for seed in range(4)]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], "\n---\n".join(o[-2000:] for o in outputs)
    _, runs = _store(tmp_path)
    assert sorted(r.data.params["seed"] for r in runs) == ["0", "1", "2", "3"]
    assert all(r.info.status == "FINISHED" for r in runs)


def test_a_resume_may_extend_training_but_not_change_what_is_learned(tmp_path):
    short = [*RUN, "trainer.max_epochs=10"]
    proc = _start(short, tmp_path)
    _wait_for("runs/*/checkpoints/last.ckpt", tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    (folder,) = [p.parent for p in tmp_path.glob("runs/*/run_info.json")]

    changed = run_cli([*short, f"resume={folder}", "gamma=0.5", "data.split.mode=segment"], tmp_path)
    assert changed.returncode == 2 and "Traceback" not in changed.stderr
    assert "model.gamma: 0.9 when the run started, 0.5 now" in changed.stderr
    assert "data.split.mode: 'track' when the run started, 'segment' now" in changed.stderr

    longer = run_cli([*short, f"resume={folder}", "trainer.max_epochs=12", "callbacks.early_stopping.patience=500"], tmp_path)
    assert longer.returncode == 0, longer.stderr[-3000:]
    client, runs = _store(tmp_path)
    assert [m.step for m in client.get_metric_history(runs[0].info.run_id, "train/loss")] == list(range(12))
