"""Where a trained model is kept, and getting it back: a checkpoint file, an MLflow run id, or a logged MLflow model.

The public entry point of the package's Python API::

    from genre_style.loading import load_model

    model = load_model("models:/genres/1")      # an inference.Embedder
    song = model.embed_file("song.wav")
    print(song.genre, song.probabilities, song.embeddings.shape)
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from genre_style.errors import UserError
from genre_style.inference import Embedder


def load_model(model: str | Path, tracking_uri: str | None = None) -> Embedder:
    """An Embedder from a checkpoint file, an MLflow run id (its `checkpoints/best.ckpt`), or a logged model
    (`models:/<name>/<version>`, `runs:/<run id>/model`) in `tracking_uri` (default $MLFLOW_TRACKING_URI, else
    outputs/mlflow.db)."""
    model = str(model)
    if model.startswith(("models:/", "runs:/")):
        from genre_style.tracking.pyfunc_model import embedder_from_mlflow

        return embedder_from_mlflow(model, tracking_uri)
    with tempfile.TemporaryDirectory() as workdir:
        return Embedder.from_checkpoint(_checkpoint(model, tracking_uri, Path(workdir)))


def run_id_of(model: str | Path) -> str | None:
    """The MLflow run a MODEL argument names (a 32-character run id that is no file, or `runs:/<id>/...`), else None."""
    model = str(model)
    if model.startswith("runs:/"):
        return model.removeprefix("runs:/").split("/", 1)[0]
    if len(model) == 32 and all(c in "0123456789abcdef" for c in model.lower()) and not Path(model).exists():
        return model
    return None


def _checkpoint(model: str, tracking_uri: str | None, workdir: Path) -> Path:
    """A checkpoint path as given, or the `checkpoints/best.ckpt` artifact of an MLflow run id."""
    if Path(model).exists():
        return Path(model)
    if run_id_of(model) is not None:
        from genre_style.tracking.mlflow_store import default_tracking_uri, open_client

        uri = tracking_uri or default_tracking_uri()
        try:
            return Path(open_client(uri).download_artifacts(model, "checkpoints/best.ckpt", str(workdir)))
        except Exception as exc:
            raise UserError(
                f"cannot fetch checkpoints/best.ckpt of run {model} from {uri} ({str(exc).splitlines()[0]})",
                "check the run id and --tracking-uri (or MLFLOW_TRACKING_URI)",
            ) from None
    raise UserError(
        f"{model} is neither a checkpoint file nor an MLflow run id", "pass a best.ckpt path or a 32-character run id"
    )
