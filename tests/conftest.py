"""Shared fixtures: a small synthetic GTZAN-layout corpus and a runner for the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

# numba's on-disk cache (librosa's jitted kernels, cache=True) is not safe to fill from two processes at once
# (numba/numba#10128): in a fresh clone's CI a worker and another process segfaulted together at address 0, and
# xdist then hung. Each xdist worker claims a cache of its own through the package (genre_style/numba_cache.py, on
# import below, before anything imports numba): a slot held for its life and kept, so the next session reuses the
# compiled kernels instead of paying librosa's JIT again (~20 s a worker). The CLI runs it starts one at a time
# share its slot (run_cli).
if "PYTEST_XDIST_WORKER" in os.environ:  # a worker: never its controller's folder, nor one set for the whole run
    for name in ("NUMBA_CACHE_DIR", "GENRE_STYLE_NUMBA_OWNER"):
        os.environ.pop(name, None)

import numpy as np
import pytest
import soundfile as sf

import genre_style  # noqa: F401 - before torch: MKL starts in its reproducible mode (genre_style/reproducibility.py)
from genre_style.data.synthetic import SyntheticSpec, generate_corpus

REPO = Path(__file__).resolve().parents[1]
SMALL = {"tracks_per_genre": 6, "seconds": 3.0, "seed": 0}
# Overrides that keep a real training run to a few seconds.
FAST_RUN = [
    "data=synthetic",
    f"data.source.synthetic.tracks_per_genre={SMALL['tracks_per_genre']}",
    f"data.source.synthetic.seconds={SMALL['seconds']}",
    "data.store.workers=1",
    "data.progress=false",
    "trainer.max_epochs=3",
    "trainer.enable_progress_bar=false",
    "logger.mlflow.log_model=false",  # ~3 s a run; the tests of the logged model switch it back on
    # The optional after-training measures (k-NN/probe/silhouette, genre MI with its plots, the decoder's
    # interpolation and traversal) are ~15% of a small run: off here, on (FULL_EVALUATION) in the tests that check them.
    "evaluation.embedding_metrics=false",
    "evaluation.disentanglement=false",
    "evaluation.interpolation_steps=0",
    "evaluation.pretrained_brackets=[]",  # frozen musicnn beside the model: its own tests (test_pretrained_beside.py)
]
LEAN_EVALUATION = ("embedding_metrics", "disentanglement", "interpolation_steps")


def _configured(keys: Sequence[str]) -> list[str]:
    """conf/train.yaml's own `evaluation.<key>` settings as overrides."""
    from omegaconf import OmegaConf

    node = OmegaConf.load(REPO / "conf" / "train.yaml").evaluation
    return [f"evaluation.{key}={str(node[key]).lower()}" for key in keys]


# The configured evaluation, for a run whose embedding metrics, MIG or decoder plots a test reads: put after FAST_RUN
# on the command line (the later setting wins).
FULL_EVALUATION = _configured(LEAN_EVALUATION)


def labelled_clips(
    n_tracks: int, clips: int, shape: Sequence[int], genres: Sequence[str] = ("classical", "jazz", "pop", "metal")
):
    """An in-memory ClipTable: `clips` clips of `shape` per track, each a genre prototype plus unit noise, tracks
    dealt round the genres (seed 0)."""
    from genre_style.data.clip_table import ClipTable

    rng = np.random.default_rng(0)
    track_labels = np.arange(n_tracks) % len(genres)
    track_index = np.repeat(np.arange(n_tracks), clips)
    labels = track_labels[track_index]
    prototypes = rng.normal(size=(len(genres), *shape))
    features = (prototypes[labels] + rng.normal(size=(len(labels), *shape))).astype(np.float32)
    return ClipTable(
        features=features,
        labels=labels.astype(np.int64),
        track_index=track_index.astype(np.int64),
        genres=list(genres),
        track_ids=[f"t{i}" for i in range(n_tracks)],
        track_labels=track_labels.astype(np.int64),
    )


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4 genres x 6 tracks x 3 s, written once per test session (read-only for tests)."""
    root = tmp_path_factory.mktemp("corpus") / "synthetic"
    return generate_corpus(root, SyntheticSpec(**SMALL), progress=False)


@pytest.fixture
def corpus_copy(small_corpus: Path, tmp_path: Path) -> Path:
    """A private copy of the small corpus that a test may damage."""
    import shutil

    dest = tmp_path / "corpus"
    shutil.copytree(small_corpus, dest)
    (dest / "synthetic.json").unlink()  # it is now a plain GTZAN-layout folder, not a generated corpus
    return dest


def quiet_trainer(max_epochs: int = 1, **settings: Any) -> Any:
    """A Lightning Trainer for in-process fits: CPU, no logger, checkpoints, progress bar or summary (`settings`
    add to or override those, e.g. callbacks)."""
    import lightning.pytorch as pl

    quiet = dict(accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False)
    return pl.Trainer(max_epochs=max_epochs, **{**quiet, "enable_model_summary": False, **settings})


def write_wav(path: Path, signal: np.ndarray, sample_rate: int = 22050) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal, sample_rate, subtype="PCM_16")
    return path


def write_split_lists(
    folder: Path,
    train: Sequence[int] = (0, 1, 2),
    val: Sequence[int] = (3,),
    test: Sequence[int] = (4, 5),
    absent: Sequence[int] = (6, 7),
    genres: Sequence[str] = ("classical", "jazz", "pop", "metal"),
    skip: Sequence[tuple[str, str]] = (),
) -> Path:
    """Artist-filtered-style lists (train/valid/test.txt) over the small corpus's 6 tracks a genre, for
    `data.split.mode=fault_filtered data.split.lists=<folder>`; the `absent` listed tracks are not on disk."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, numbers in (("train", (*train, *absent)), ("valid", val), ("test", test)):
        lines = [f"{g}/{g}.{n:05d}.wav" for g in genres for n in numbers if (g, name) not in skip]
        (folder / f"{name}.txt").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session", autouse=True)
def _mlflow_store_template(tmp_path_factory: pytest.TempPathFactory) -> None:
    """An empty MLflow store with its schema already created, copied into each test's output folder:
    creating the schema costs seconds per store, the same for every test."""
    from mlflow.tracking import MlflowClient

    template = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{template}").search_experiments()
    global _STORE_TEMPLATE
    _STORE_TEMPLATE = template


_STORE_TEMPLATE: Path | None = None


def run_cli(
    args: list[str], output_root: Path, module: str = "genre_style.train", env: dict | None = None, timeout: float = 900
) -> subprocess.CompletedProcess:
    """Run `python -m <module> <args>` as a user would, with every output under `output_root`. The timeout only catches
    a hang: on a 2-core machine other jobs load, a run of seconds took over 300 s (4 min of imports at load 17)."""
    store = Path(output_root) / "mlflow.db"
    if _STORE_TEMPLATE is not None and not store.exists() and Path(output_root).parent.is_dir():
        Path(output_root).mkdir(parents=True, exist_ok=True)
        import shutil

        shutil.copyfile(_STORE_TEMPLATE, store)
    full_env = {**os.environ, "GENRE_STYLE_OUTPUTS": str(output_root), "PYTHONUNBUFFERED": "1", **(env or {})}
    full_env.pop("GENRE_STYLE_NUMBA_OWNER", None)  # the worker's numba cache is the child's: it waits while the child runs
    # a developer's team settings (and an account signed in by the test itself) stay out of tests
    for shared in ("MLFLOW_TRACKING_URI", "OPTUNA_STORAGE", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"):
        if not (env and shared in env):
            full_env.pop(shared, None)
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=REPO, env=full_env, capture_output=True, text=True, timeout=timeout
    )
