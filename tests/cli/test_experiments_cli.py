"""The configured experiments (conf/experiment/) trained as a user types them, for one epoch on the synthetic corpus:
a setting that no longer composes, validates or fits with the others fails here, not in a user's first long run."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import FAST_RUN, run_cli, write_split_lists
from tests.pretrained import needs_musicnn

pytestmark = pytest.mark.slow  # real training runs through the CLI

# What each experiment promises (its yaml), as MLflow records it; the overrides only make it small.
EXPECTED = {
    "demo": {"model": "DeepSoftmaxAutoencoder", "monitor.metric": "val/ce", "monitor.mode": "min"},  # `make demo`
    "style": {
        "model": "DeepSoftmaxAutoencoder",
        "encoder": "LogMelCNN",
        "model.optimizer": "AdamW",
        "model.contrastive_weight": "0.5",
    },
    "new_artists": {
        "model": "LogisticRegressionBaseline",
        "data.clips.features": "stats",
        "model.class_weight": "balanced",
        "data.split.mode": "fault_filtered",
    },
    "gtzan10": {"model": "DeepSoftmaxAutoencoder", "data.split.mode": "fault_filtered", "data.source.genres": "all"},
    "pretrained": {"model": "TwoLayerNet", "encoder": "MusicnnEncoder", "data.clips.features": "musicnn_mel"},
}
SMALL = {"style": ["model.encoder.channels=[4,8]"]}  # the conv encoder at its test size
LISTS = ("new_artists", "gtzan10")  # the artist-filtered split: the synthetic corpus's own lists (not GTZAN's names)


@pytest.mark.parametrize("experiment", [pytest.param(e, marks=needs_musicnn) if e == "pretrained" else e for e in EXPECTED])
def test_a_configured_experiment_trains_as_configured(experiment, tmp_path):
    fast = [a for a in FAST_RUN if not a.startswith("trainer.max_epochs")]
    extra = [*SMALL.get(experiment, []), "trainer.max_epochs=1"]
    if experiment in LISTS:
        extra.append(f"data.split.lists={write_split_lists(tmp_path / 'lists')}")
    result = run_cli([f"experiment={experiment}", *fast, *extra], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])
    assert run.info.status == "FINISHED" and run.data.tags["experiment"] == experiment
    params = run.data.params
    assert {k: params.get(k) for k in EXPECTED[experiment]} == EXPECTED[experiment]
    assert "final/test/acc" in run.data.metrics and "final/test/track_acc" in run.data.metrics
