"""Music style transfer from a trained model's encodings (`python -m genre_style.transfer`), scored by judges that
did not make it. `inversion` turns log-mel maps back into audio, `methods` moves a song toward a style, `scores`
reads the result back from its file with independent models and content-preservation measures."""

from __future__ import annotations

from typing import Any

EXPERIMENT = "genre-style-transfer"  # the MLflow experiment transfers and their benchmarks log to


def transfer_experiment(client: Any, tracking_uri: str) -> str:
    """The id of EXPERIMENT in `client`'s store, created where missing with its artifacts beside a local store
    (`<store dir>/mlartifacts`, as training runs keep theirs): one place, so `transfer` and the benchmarks' runs
    land in the same experiment whichever logs first."""
    from pathlib import Path

    from genre_style.tracking.mlflow_store import prepare_store

    experiment = client.get_experiment_by_name(EXPERIMENT)
    if experiment is not None:
        return str(experiment.experiment_id)
    local = tracking_uri.startswith("sqlite:///")
    location = prepare_store(tracking_uri, Path(tracking_uri.removeprefix("sqlite:///")).parent) if local else None
    return str(client.create_experiment(EXPERIMENT, artifact_location=location))
