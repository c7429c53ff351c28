"""The best checkpoint as an MLflow model (a pyfunc: audio in, genre probabilities and the embedding out), and back.

Logged from code (`mlflow_model_code.py`, MLflow 3's models-from-code) with the checkpoint as its artifact: nothing is
pickled. `mlflow.pyfunc.load_model("models:/<name>/<version>")` or `("runs:/<run id>/<name>")` (e.g. `dsae-mlp`) gives the pyfunc back by
running that file; genre-style's own commands (`load_model`) run nothing of the model's: they read its checkpoint
artifact alone, through genre_style/model_files.py.
"""

from __future__ import annotations

import importlib.metadata
import tempfile
from pathlib import Path
from typing import Any

import mlflow.pyfunc
import numpy as np

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


MODEL_NAME_TAG = "genre_style.logged_model"  # the run's logged model's name: `runs:/<run id>/model` still finds it


def log_model(checkpoint: Path, tracking_uri: str, run_id: str, registered_name: str | None, name: str = "model") -> Any:
    """Log (and, with `registered_name`, register) the checkpoint as the run's `model`, from code: the model's file
    and the package's code go with it, so loading needs only the pinned requirements and unpickles nothing."""
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
        mlflow.set_tag(MODEL_NAME_TAG, name)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(Path(__file__).with_name("mlflow_model_code.py")),
            artifacts={"checkpoint": str(checkpoint)},
            code_paths=[str(Path(genre_style.__file__).parent)],
            signature=signature(genres, has_classifier),
            input_example=example,
            pip_requirements=versions,
            registered_model_name=registered_name,
        )


def embedder_from_mlflow(uri: str, tracking_uri: str | None = None) -> Any:
    """The `Embedder` of a logged model (`models:/<name>/<version>`, `runs:/<run id>/model`) of a store (default:
    $MLFLOW_TRACKING_URI, else outputs/mlflow.db), from its checkpoint artifact alone: nothing of the model's is run
    or unpickled (its code file, or an older model's pickle, stays unread)."""
    import yaml
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    from genre_style.errors import UserError
    from genre_style.inference import Embedder
    from genre_style.tracking.mlflow_store import default_tracking_uri

    mlflow.set_tracking_uri(tracking_uri or default_tracking_uri())
    with tempfile.TemporaryDirectory() as workdir:
        try:
            repository = get_artifact_repository(logged_model_uri(uri))
            spec = yaml.safe_load(Path(repository.download_artifacts("MLmodel", workdir)).read_text())
            relative = spec["flavors"]["python_function"]["artifacts"]["checkpoint"]["path"]
            checkpoint = repository.download_artifacts(str(relative), workdir)
        except Exception as exc:
            raise UserError(
                f"cannot load the MLflow model {uri} ({str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__})",
                "check the name and version (MLflow's Models page) and the tracking URI; it must be a model genre-style logged",
            ) from None
        return Embedder.from_checkpoint(checkpoint)


def logged_model_uri(uri: str) -> str:
    """`runs:/<run id>/model` as the run's logged model is named (`MODEL_NAME_TAG`, e.g. `runs:/<id>/dsae-mlp`); every
    other URI as it is. Models logged before they had names are called `model`, and are found as such."""
    run_id, _, path = uri.removeprefix("runs:/").partition("/")
    if not uri.startswith("runs:/") or path.strip("/") != "model":
        return uri
    from mlflow.tracking import MlflowClient

    name = MlflowClient().get_run(run_id).data.tags.get(MODEL_NAME_TAG)
    return f"runs:/{run_id}/{name}" if name else uri
