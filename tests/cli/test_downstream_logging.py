"""`python -m genre_style.downstream` with a checkpoint path logs to the run that trained it, found through the run
folder's run_info.json, or says in one line that nothing was logged (issue #41 item 6)."""

from __future__ import annotations

import json

import pytest
from mlflow.tracking import MlflowClient

from genre_style.data.audio import ClipSpec
from genre_style.downstream import main
from tests.checkpoints import build, save

# Real MLflow stores, ~8 s in all: the full suite runs these, `make test-fast` leaves them out.
pytestmark = pytest.mark.slow

QUICK = ["--splits", "1", "--episodes", "1", "--clips-per-track", "2", "--name", "unseen"]


@pytest.fixture
def run_folder(tmp_path):
    """A finished training run's folder, as training leaves it, and its run in a real MLflow store."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    run = client.create_run(client.create_experiment("genre-style"))
    folder = tmp_path / "runs" / "2026-01-01_00-00-00"
    (folder / "artifacts" / "checkpoints").mkdir(parents=True)
    (folder / "run_info.json").write_text(json.dumps({"mlflow_run_id": run.info.run_id, "tracking_uri": uri}))
    checkpoint = save(build("dsae"), ClipSpec(), folder / "artifacts" / "checkpoints" / "best.ckpt")
    return checkpoint, client, run.info.run_id


def test_a_checkpoint_in_a_run_folder_logs_to_its_run(run_folder, small_corpus, tmp_path, capsys):
    checkpoint, client, run_id = run_folder
    assert main([str(checkpoint), str(small_corpus), *QUICK, "--out", str(tmp_path / "out")]) == 0
    assert f"logged to run {run_id}" in capsys.readouterr().out
    metrics = client.get_run(run_id).data.metrics
    assert any(key.startswith("final/downstream/unseen/") for key in metrics), sorted(metrics)[:5]
    assert {a.path for a in client.list_artifacts(run_id, "downstream")} == {"downstream/unseen.md", "downstream/unseen.json"}


def test_a_checkpoint_outside_a_run_folder_says_nothing_was_logged(run_folder, small_corpus, tmp_path, capsys):
    checkpoint, client, run_id = run_folder
    loose = tmp_path / "loose.ckpt"
    loose.write_bytes(checkpoint.read_bytes())
    assert main([str(loose), str(small_corpus), *QUICK, "--out", str(tmp_path / "out")]) == 0
    said = capsys.readouterr().out.strip().splitlines()
    assert said[-1].startswith(f"not logged to MLflow: {loose} is not in a training run's folder")
    assert said[-2] == f"-> {tmp_path / 'out' / 'unseen.md'}, {tmp_path / 'out' / 'unseen.json'}"
    assert not client.get_run(run_id).data.metrics
