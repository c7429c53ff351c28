"""The logged MLflow model, as MLflow 3's models-from-code: this file, not a pickle, is what MLflow runs to rebuild it.

`mlflow.pyfunc.load_model("models:/<name>/<n>")` (or `runs:/<run id>/<name>`, or `mlflow models serve`) executes this
file from the model's folder with the package's code beside it, then `load_context` reads the `checkpoint` artifact
through genre_style/model_files.py (weights and plain data only). Nothing of the project's is unpickled.

Input, one row per piece of audio: a `path` to an audio file (anything librosa decodes), or an `audio` waveform (mono
samples) with its `sample_rate` (any rate: it is resampled to the model's). Output, one row per input: the song's
verdict, a probability per genre and the mean embedding (genre_style/inference.py, as `predict` gives them).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow.models
import numpy as np
from mlflow.pyfunc import PythonModel

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

mlflow.models.set_model(GenreStyleModel())
