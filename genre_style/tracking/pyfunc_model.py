"""The best checkpoint as an MLflow model: a pyfunc that takes audio and returns genre probabilities and the embedding.

Input, one row per piece of audio: a `path` to an audio file (anything librosa decodes), or an `audio` waveform
(mono samples) with its `sample_rate` (any rate: it is resampled to the model's). Output, one row per input: the
song's verdict, a probability per genre and the mean embedding (genre_style/inference.py, as `predict` gives them).
`mlflow.pyfunc.load_model("models:/<name>/<version>")` or `("runs:/<run id>/model")` gives it back.
"""

from __future__ import annotations

import importlib.metadata
import warnings
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np
from mlflow.pyfunc import PythonModel

# What loading the model needs: the versions this process runs, pinned.
REQUIREMENTS = (
    "torch",
    "lightning",
    "torchmetrics",
    "hydra-core",
    "omegaconf",
    "numpy",
    "pandas",
    "librosa",
    "soundfile",
    "scikit-learn",
    "mlflow",
)


# MLflow warns when a PythonModel subclass is created whose predict has no type hints, under a decorator that puts
# its own "once" filter ahead of every other (so `console.quiet_console` can't silence it). This model takes files
# or waveforms on purpose, described by its signature: the warning is recorded here and dropped; others pass on.
with warnings.catch_warnings(record=True) as _caught:

    class GenreStyleModel(PythonModel):
        """A trained genre-style model and its preprocessing (front-end, standardisation), from its checkpoint."""

        def load_context(self, context: Any) -> None:
            from genre_style.inference import Embedder

            self.embedder = Embedder.from_checkpoint(context.artifacts["checkpoint"])

        def predict(self, context, model_input, params=None):  # no type hints: MLflow would read them as a schema
            import pandas as pd

            frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame({"path": list(model_input)})
            embedder, rows = self.embedder, []
            for _, item in frame.iterrows():
                path = item.get("path")
                if isinstance(path, str) and path:
                    song = embedder.embed_file(Path(path))
                else:
                    rate = item.get("sample_rate")
                    song = embedder.embed_audio(
                        np.asarray(item["audio"], dtype=np.float32), sample_rate=int(rate) if rate == rate and rate else None
                    )
                row: dict[str, Any] = {}
                if song.probabilities is not None:  # the song's verdict: genre_style/inference.py
                    row["predicted_genre"] = song.genre
                    row.update({f"prob_{genre}": float(p) for genre, p in zip(embedder.genres, song.probabilities)})
                row["embedding"] = song.embedding.astype(float).tolist()
                rows.append(row)
            return pd.DataFrame(rows)


for _warning in _caught:
    if "Add type hints to the `predict` method" not in str(_warning.message):
        warnings.warn_explicit(_warning.message, _warning.category, _warning.filename, _warning.lineno)


def signature(genres: list[str], has_classifier: bool) -> Any:
    from mlflow.models import ModelSignature
    from mlflow.types.schema import Array, ColSpec, Schema

    inputs = Schema(
        [
            ColSpec("string", "path", required=False),
            ColSpec(Array("double"), "audio", required=False),
            ColSpec("double", "sample_rate", required=False),
        ]
    )
    outputs: list[Any] = [ColSpec(Array("double"), "embedding")]
    if has_classifier:
        outputs = [ColSpec("string", "predicted_genre"), *(ColSpec("double", f"prob_{g}") for g in genres), *outputs]
    return ModelSignature(inputs=inputs, outputs=Schema(outputs))


def log_model(checkpoint: Path, tracking_uri: str, run_id: str, registered_name: str | None) -> Any:
    """Log (and, with `registered_name`, register) the checkpoint as the run's `model`; the package's code goes with
    it, so loading needs only the pinned requirements."""
    import pandas as pd

    import genre_style
    from genre_style.inference import Embedder

    embedder = Embedder.from_checkpoint(checkpoint)
    genres, has_classifier, sample_rate = embedder.genres, embedder.has_classifier, embedder.spec.sample_rate

    versions = []
    for package in REQUIREMENTS:
        try:
            versions.append(f"{package}=={importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(package)
    seconds = np.arange(sample_rate, dtype=np.float32) / sample_rate  # one second of a 440 Hz tone
    example = pd.DataFrame({"audio": [(0.1 * np.sin(2 * np.pi * 440 * seconds)).tolist()], "sample_rate": [float(sample_rate)]})
    mlflow.set_tracking_uri(tracking_uri)
    with mlflow.start_run(run_id=run_id, log_system_metrics=False):  # the training run (the logger ends it)
        return mlflow.pyfunc.log_model(
            name="model",
            python_model=GenreStyleModel(),
            artifacts={"checkpoint": str(checkpoint)},
            code_paths=[str(Path(genre_style.__file__).parent)],
            signature=signature(genres, has_classifier),
            input_example=example,
            pip_requirements=versions,
            registered_model_name=registered_name,
        )


def embedder_from_mlflow(uri: str, tracking_uri: str | None = None) -> Any:
    """The `Embedder` inside a logged model (`models:/<name>/<version>`, `runs:/<run id>/model`) of a store (default:
    $MLFLOW_TRACKING_URI, else outputs/mlflow.db)."""
    from genre_style.errors import UserError
    from genre_style.tracking.store import default_tracking_uri

    mlflow.set_tracking_uri(tracking_uri or default_tracking_uri())
    try:
        return mlflow.pyfunc.load_model(uri).unwrap_python_model().embedder
    except Exception as exc:
        raise UserError(
            f"cannot load the MLflow model {uri} ({str(exc).splitlines()[0][:200]})",
            "check the name and version (MLflow's Models page) and the tracking URI",
        ) from None
