"""A model file someone sends you runs no code: every command that reads one refuses a hostile file in one line, and
every file training writes still loads and predicts as before."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from genre_style.errors import UserError
from tests.conftest import FAST_RUN, run_cli, write_wav

pytestmark = pytest.mark.slow  # real training runs and the CLI as a user runs it


class Payload:
    """What an attacker pickles: unpickling it calls `os.system`, which creates the marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, small_corpus):
    """Two real runs, as users share them: a DSAE whose model is logged and registered in MLflow, and the logistic
    regression baseline."""
    out = tmp_path_factory.mktemp("trusted")
    args = [*FAST_RUN, f"data.source.root={small_corpus}", "trainer.max_epochs=2"]
    dsae_args = [*args, "model=dsae", "register_as=shared", "logger.mlflow.log_model=true"]
    dsae = run_cli(dsae_args, out)
    assert dsae.returncode == 0, dsae.stderr[-3000:]
    logreg = run_cli([*args, "model=logreg", "features=stats"], out)
    assert logreg.returncode == 0, logreg.stderr[-3000:]
    checkpoints = sorted(out.glob("runs/*/artifacts/checkpoints/best.ckpt"), key=lambda p: p.stat().st_mtime)
    song = write_wav(out / "song.wav", np.random.default_rng(0).normal(scale=0.1, size=3 * 22050).astype(np.float32))
    return {"out": out, "dsae": checkpoints[0], "logreg": checkpoints[1], "song": song, "dsae_args": dsae_args}


def _hostile(trained, tmp_path: Path, kind: str) -> tuple[Path, Path]:
    """A hostile checkpoint of `kind` and the marker file its payload would create."""
    marker = tmp_path / "pwned"
    path = tmp_path / f"{kind}.ckpt"
    if kind == "bare":  # the example: nothing but the payload
        torch.save({"genre_style": Payload(marker), "GenreDataModule": {}}, path)
        return path, marker
    state = torch.load(trained["logreg" if kind.startswith("logreg") else "dsae"], weights_only=True)
    if kind in ("dsae", "logreg"):  # a real checkpoint with the payload inside it
        state["genre_style"]["class_names"] = Payload(marker)
    elif kind == "model_class":  # plain data that names a callable as the model class
        state["genre_style"]["model_class"] = "os.system"
        state["hyper_parameters"] = {"command": f"touch {marker}"}
    elif kind == "target":  # plain data whose encoder Hydra would instantiate as a call
        state["hyper_parameters"]["encoder"] = {"_target_": "os.system", "command": f"touch {marker}"}
    elif kind == "nested_target":  # ... nested, where Hydra's recursive instantiation would reach it
        state["hyper_parameters"]["encoder"]["extra"] = {"_target_": "subprocess.run", "args": ["touch", str(marker)]}
    torch.save(state, path)
    return path, marker


def _logged_model_folder(out: Path) -> Path:
    """The one logged MLflow model of the module's runs (the DSAE's, registered as `shared`), on disk."""
    (folder,) = out.glob("mlartifacts/models/*/artifacts")
    return folder


@pytest.mark.parametrize("kind", ["bare", "dsae", "logreg", "model_class", "target", "nested_target"])
def test_no_command_runs_a_hostile_checkpoint(trained, tmp_path, kind):
    path, marker = _hostile(trained, tmp_path, kind)
    song, out = str(trained["song"]), tmp_path / "cli"
    commands = {
        "genre_style.predict": [str(path), song],
        "genre_style.embed": [str(path), song, "--out", str(tmp_path / "e.csv")],
        "genre_style.transfer": [song, song, "--model", str(path), "--no-log", "--out", str(tmp_path / "t.wav")],
        "genre_style.downstream": [str(path), str(trained["out"] / "no-such-folder"), "--no-log"],
    }
    commands["genre_style.export"] = [str(path), "--onnx", str(tmp_path / "m.onnx")]
    # Every command reads through one function (model_files.read_checkpoint): each CLI meets a pickle payload and a
    # plain-data one; the other kinds go through the Python entry points below (a CLI start costs ~5 s of CPU).
    for module, args in commands.items() if kind in ("bare", "target") else ():
        result = run_cli(args, out, module=module)
        assert result.returncode == 2, (module, result.stderr[-2000:])
        assert "Traceback" not in result.stderr and "refused" in result.stderr, (module, result.stderr[-2000:])
        assert len(result.stderr.strip().splitlines()) <= 2, (module, result.stderr)  # the problem and its fix
        assert not marker.exists(), f"{module} ran the file's code"
    import genre_style.hear as hear
    from genre_style.loading import load_model

    for load in (hear.load_model, load_model):
        with pytest.raises(UserError, match="refused"):
            load(str(path))
    assert not marker.exists()


def test_a_hostile_resume_checkpoint_is_refused_before_lightning_reads_it(trained, tmp_path):
    """A run folder from elsewhere (`resume=<folder>`) whose last.ckpt carries the payload."""
    run = tmp_path / "runs" / "elsewhere"
    shutil.copytree(trained["dsae"].parents[2], run)
    (run / "checkpoints").mkdir(exist_ok=True)
    marker = tmp_path / "pwned"
    state = torch.load(trained["dsae"], weights_only=True)
    state["loops"] = Payload(marker)
    torch.save(state, run / "checkpoints" / "last.ckpt")
    info = run / "run_info.json"
    info.write_text(info.read_text().replace('"finished"', '"interrupted"'))
    result = run_cli([*trained["dsae_args"], f"resume={run}"], trained["out"])  # its own settings: only the file differs
    assert result.returncode == 2, result.stderr[-3000:]
    assert "refused" in result.stderr and "Traceback" not in result.stderr, result.stderr[-3000:]
    assert not marker.exists()


def test_a_hostile_mlflow_model_is_refused_and_its_pickle_never_read(trained, tmp_path, monkeypatch):
    """The registered model's checkpoint replaced by a hostile one, and a hostile pickle put beside it where an older
    MLflow model kept its python_model.pkl: loading by name reads neither's code."""
    uri = f"sqlite:///{trained['out'] / 'mlflow.db'}"
    folder = _logged_model_folder(trained["out"])
    copy = tmp_path / "model-copy"
    shutil.copytree(folder, copy)  # restored below: the other tests use the registered model
    try:
        marker = tmp_path / "pwned"
        hostile, _ = _hostile(trained, tmp_path, "bare")
        shutil.copyfile(hostile, folder / "artifacts" / "best.ckpt")
        torch.save(Payload(marker), folder / "python_model.pkl")
        from genre_style.loading import load_model

        with pytest.raises(UserError, match="refused"):
            load_model("models:/shared/1", uri)
        result = run_cli(
            ["models:/shared/1", str(trained["song"]), "--tracking-uri", uri], tmp_path / "cli", "genre_style.predict"
        )
        assert result.returncode == 2 and "refused" in result.stderr, result.stderr[-2000:]
        assert not marker.exists()
    finally:
        shutil.rmtree(folder)
        shutil.copytree(copy, folder)


def test_the_logged_model_is_code_not_a_pickle_and_predicts_as_the_checkpoint(trained):
    import mlflow
    import pandas as pd

    from genre_style.loading import load_model

    uri = f"sqlite:///{trained['out'] / 'mlflow.db'}"
    folder = _logged_model_folder(trained["out"])
    assert not list(folder.rglob("*.pkl")) and (folder / "mlflow_model_code.py").is_file()
    mlflow.set_tracking_uri(uri)
    served = mlflow.pyfunc.load_model("models:/shared/1").predict(pd.DataFrame({"path": [str(trained["song"])]}))
    ours = load_model(trained["dsae"]).embed_file(trained["song"])
    assert served["predicted_genre"][0] == ours.genre
    assert np.array_equal(np.asarray(served["embedding"][0]), ours.embedding.astype(float))
    assert load_model("models:/shared/1", uri).embed_file(trained["song"]).genre == ours.genre


@pytest.mark.parametrize("kind", ["dsae", "logreg"])
def test_checkpoints_training_writes_predict_as_an_unchecked_load_does_to_the_bit(trained, kind):
    """Today's safe reading against yesterday's `torch.load(weights_only=False)` and class import, on the same file."""
    from genre_style.inference import Embedder, Preprocessing

    path = trained[kind]
    state = torch.load(path, map_location="cpu", weights_only=False)
    module, name = state["genre_style"]["model_class"].rsplit(".", 1)
    old_model = getattr(importlib.import_module(module), name)(**state["hyper_parameters"])
    old_model.load_state_dict(state["state_dict"])
    old = Embedder(old_model, state["genre_style"]["class_names"], Preprocessing.from_state(state["GenreDataModule"]))
    new = Embedder.from_checkpoint(path)
    a, b = old.embed_file(trained["song"]), new.embed_file(trained["song"])
    assert np.array_equal(a.embeddings, b.embeddings) and np.array_equal(a.logits, b.logits)


def test_a_trusted_file_with_objects_converts_to_one_every_command_reads(trained, tmp_path):
    """A checkpoint from an older or forked version, with an OmegaConf config pickled in its hyperparameters."""
    from omegaconf import OmegaConf

    from genre_style.inference import Embedder

    state = torch.load(trained["dsae"], weights_only=True)
    state["hyper_parameters"]["encoder"] = OmegaConf.create(state["hyper_parameters"]["encoder"])
    old, new = tmp_path / "old.ckpt", tmp_path / "new.ckpt"
    torch.save(state, old)
    with pytest.raises(UserError, match=r"convert_checkpoint .*old\.ckpt"):
        Embedder.from_checkpoint(old)
    result = run_cli([str(old), str(new)], tmp_path / "cli", module="genre_style.convert_checkpoint")
    assert result.returncode == 0, result.stderr[-2000:]
    song = trained["song"]
    assert np.array_equal(
        Embedder.from_checkpoint(new).embed_file(song).embeddings,
        Embedder.from_checkpoint(trained["dsae"]).embed_file(song).embeddings,
    )


def test_an_encoder_of_your_own_package_is_trusted_once_you_name_it(tmp_path, monkeypatch):
    """The allow-list is the package's own parts plus the prefixes in $GENRE_STYLE_TRUSTED_MODULES, and even there only
    module, optimiser and scheduler classes are built."""
    from genre_style.model_files import check_target

    (tmp_path / "my_encoders.py").write_text("import os, torch\nclass Tiny(torch.nn.Module):\n    pass\nrun = os.system\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match="GENRE_STYLE_TRUSTED_MODULES"):
        check_target("my_encoders.Tiny")
    monkeypatch.setenv("GENRE_STYLE_TRUSTED_MODULES", "my_encoders")
    check_target("my_encoders.Tiny")
    check_target("torch.optim.AdamW")
    for callable_not_class in ("my_encoders.run", "genre_style.download.main", "torch.nn.functional.relu"):
        with pytest.raises(UserError, match="refused"):
            check_target(callable_not_class)
