"""Same command, same bits: the math libraries' reproducible settings reach every process, are recorded with the
run, and two runs of one command agree to the bit, one of them beside a CPU hog (genre_style/reproducibility.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from genre_style import reproducibility
from tests.conftest import FAST_RUN, FULL_EVALUATION, REPO, run_cli
from tests.cpu_hog import cpu_hog


def _environment_of_a_fresh_process(**env: str) -> dict[str, str]:
    code = "import genre_style, json, os; print(json.dumps({k: os.environ.get(k) for k in ('MKL_CBWR', 'MKL_DYNAMIC')}))"
    full_env = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "MKL_DYNAMIC", reproducibility.SWITCH)}
    out = subprocess.run([sys.executable, "-c", code], env={**full_env, **env}, cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow  # fresh processes
def test_importing_the_package_sets_the_reproducible_mode_unless_switched_off_or_set_by_the_user():
    assert _environment_of_a_fresh_process() == {"MKL_CBWR": "AUTO,STRICT", "MKL_DYNAMIC": "FALSE"}
    assert _environment_of_a_fresh_process(GENRE_STYLE_REPRODUCIBLE="0") == {"MKL_CBWR": None, "MKL_DYNAMIC": None}
    assert _environment_of_a_fresh_process(MKL_CBWR="AVX2")["MKL_CBWR"] == "AVX2"  # the user's own choice wins


def test_the_test_processes_run_with_it_in_effect():
    """conftest imports the package before torch, so MKL started in its reproducible mode here too."""
    assert reproducibility.IN_EFFECT
    assert os.environ["MKL_CBWR"] == "AUTO,STRICT"
    recorded = reproducibility.settings()
    assert recorded["reproducible"] is True and recorded["torch_threads"] == torch.get_num_threads()
    assert recorded["cpu_capability"]


def test_the_recorded_settings_follow_torchs_deterministic_switch():
    """trainer.deterministic sets torch's switch per Trainer: what a run records is the switch as it was then."""
    before = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    try:
        for on in (True, False):
            torch.use_deterministic_algorithms(on, warn_only=True)
            assert reproducibility.settings()["deterministic_algorithms"] is on
    finally:
        torch.use_deterministic_algorithms(before[0], warn_only=before[1])


def test_trainer_deterministic_is_on_where_a_gpu_is_and_follows_the_switch(monkeypatch):
    assert reproducibility.deterministic_mode() == ("warn" if torch.cuda.is_available() else False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert reproducibility.deterministic_mode() == "warn"
    monkeypatch.setenv(reproducibility.SWITCH, "off")
    assert reproducibility.deterministic_mode() is False


def _run(out: Path, small_corpus: Path) -> tuple[dict, dict, dict]:
    # Enough epochs for a last-bit difference to grow into different weights; no early stop.
    args = [a for a in FAST_RUN if not a.startswith("trainer.max_epochs")]
    # the configured evaluation too: its probes and k-NN (scikit-learn, BLAS) are in the figures compared to the bit
    settings = [
        f"data.source.root={small_corpus}",
        "trainer.max_epochs=25",
        "callbacks.early_stopping.patience=100",
        *FULL_EVALUATION,
    ]
    result = run_cli([*args, *settings], out)
    assert result.returncode == 0, result.stderr[-3000:]
    (folder,) = [p.parent for p in out.glob("runs/*/run_info.json")]
    metrics = json.loads((folder / "artifacts/report/final_metrics.json").read_text())
    weights = torch.load(folder / "artifacts/checkpoints/best.ckpt", weights_only=True)["state_dict"]
    info = json.loads((folder / "run_info.json").read_text())
    return metrics, weights, info


@pytest.mark.slow
def test_the_same_command_twice_gives_the_same_bits_even_beside_a_cpu_hog(tmp_path, small_corpus):
    quiet_metrics, quiet_weights, info = _run(tmp_path / "quiet", small_corpus)
    with cpu_hog():
        busy_metrics, busy_weights, _ = _run(tmp_path / "busy", small_corpus)
    assert busy_metrics == quiet_metrics
    assert all(torch.equal(busy_weights[k], quiet_weights[k]) for k in quiet_weights)
    # The settings are recorded with the run: run_info.json and the MLflow params.
    assert info["math"]["MKL_CBWR"] == "AUTO,STRICT" and info["math"]["reproducible_in_effect"] is True
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'quiet' / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])
    assert run.data.params["math.MKL_CBWR"] == "AUTO,STRICT"
    assert run.data.params["math.MKL_DYNAMIC"] == "FALSE"
    assert run.data.params["math.reproducible"] == "True"
