"""What an MLflow run says about itself (genre_style/tracking/run_record.py), read back the way the report reads it
(genre_style/reporting/): params that name the model, its data and split once each, repeats of a configuration that
pair across seeds, tags and name to filter by, and a description with the best checkpoint's figures."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig, OmegaConf

from genre_style.reporting.runs import MODEL_NAMES, configuration_key, group_runs, normalized
from genre_style.reporting.sections import short_label
from genre_style.tracking.run_record import (
    NOT_PARAMS,
    data_name,
    description,
    logged_model_name,
    readable_params,
    run_name,
    run_tags,
)
from tests.conftest import REPO


@pytest.fixture(scope="module")
def composed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, DictConfig]:
    """`experiment=demo` and `experiment=best` as training composes them (variations are edits of copies)."""
    out = tmp_path_factory.mktemp("outputs")
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        return {
            name: compose(
                config_name="train",
                overrides=[f"experiment={name}", f"paths.output_root={out}", f"paths.output_dir={out}/run", "logger=none"],
            )
            for name in ("demo", "best")
        }


def _edited(cfg: DictConfig, **changes: Any) -> DictConfig:
    copy = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False))
    for key, value in changes.items():
        OmegaConf.update(copy, key, value)
    return copy


def _logged(cfg: DictConfig) -> Any:
    """The run as the report gets it back from MLflow: params and tags as strings."""
    params = {key: str(value) for key, value in readable_params(cfg).items()}
    return normalized(SimpleNamespace(data=SimpleNamespace(params=params, metrics={}, tags=run_tags(cfg))))


def test_params_name_the_model_and_its_data_once_each_without_bookkeeping(composed):
    cfg = composed["demo"]
    params = readable_params(cfg)
    assert params["model"] == "DeepSoftmaxAutoencoder" and params["model"] in MODEL_NAMES  # a class name the report knows
    assert params["encoder"] == "MLPEncoder" and readable_params(composed["best"])["encoder"] == "LogMelCNN"
    assert params["model.optimizer"] == "Adam"
    assert (params["data.split.mode"], params["data.clips.features"], params["seed"]) == ("track", "raw_pool", 42)
    assert params["data.source.root"] == f"{cfg.paths.output_root}/data/synthetic"
    assert None not in params.values() and not any(k.endswith("_target_") or k.startswith(NOT_PARAMS) for k in params)
    # An alias is logged once, under its own name, not again where it is used (`model.lr: ${lr}`).
    assert params["lr"] == 0.001 and params["gamma"] == 0.9 and "model.lr" not in params and "model.gamma" not in params


def test_no_param_holds_a_machine_path_but_the_data_root(composed):
    """The same settings run in another folder are the same configuration: where things go is not a param."""
    root = str(composed["demo"].paths.output_root)
    for cfg in composed.values():
        holding = [k for k, v in readable_params(cfg).items() if root in str(v) and k != "data.source.root"]
        assert not holding, holding


def test_seeds_of_one_configuration_pair_in_the_report_and_a_changed_setting_does_not(composed):
    demo = composed["demo"]
    runs = [_logged(demo), _logged(_edited(demo, seed=1)), _logged(_edited(demo, lr=0.01))]
    keys = [configuration_key(run.data.params) for run in runs]
    assert keys[0] == keys[1] != keys[2]
    assert ("lr", "0.01") in keys[2] and ("model.lr", "0.01") not in keys[2]
    # The report's tables: one group per (split, front-end, data), the model by its class, labelled as a reader sees it.
    assert list(group_runs(runs)) == [("track", "raw_pool", "synthetic")]
    assert short_label(runs[0].data.params) == "DSAE · raw_pool (experiment=demo)"
    best = _logged(composed["best"])
    assert short_label(best.data.params) == "DSAE · logmel · LogMelCNN · trained on 33 clips a song (experiment=best)"
    assert list(group_runs([best])) == [("track", "logmel", data_name(str(composed["best"].data.source.root)))]


def test_tags_and_names_say_what_was_trained_on_what(composed):
    demo = _edited(composed["demo"], **{"tags.owner": "ada"})
    assert run_tags(demo) == {
        "model": "DeepSoftmaxAutoencoder",
        "encoder": "MLPEncoder",
        "features": "raw_pool",
        "data": "synthetic",
        "split": "track",
        "seed": "42",
        "experiment": "demo",
        "owner": "ada",
    }
    assert run_name(demo) == "DeepSoftmaxAutoencoder · synthetic · track · s42"  # the MLP encoder is the model's own
    best = composed["best"]
    assert run_name(best) == f"DeepSoftmaxAutoencoder+LogMelCNN · {data_name(str(best.data.source.root))} · track · s42"
    assert logged_model_name(best) == "DeepSoftmaxAutoencoder-LogMelCNN"


@pytest.mark.parametrize(
    "root, name",
    [("/data/gtzan/genres", "gtzan"), ("/data/gtzan-mini", "gtzan-mini"), ("/data/fma/manifest.csv", "manifest")],
)
def test_the_data_is_named_by_its_folder_or_manifest(root, name):
    assert data_name(root) == name


def test_the_description_shows_the_best_epoch_and_its_figures(composed):
    cfg = composed["demo"]  # monitor: val/ce, min
    history = [{"epoch": 0, "val/ce": 1.0}, {"epoch": 1, "val/ce": 0.4}, {"epoch": 2, "val/ce": 0.7}]
    metrics = {"val/acc": 0.5, "test/acc": 0.75, "test/track_acc": 1.0, "test/knn_acc_bottleneck": 0.625, "test/f1_jazz": 0.1}
    text = description(cfg, metrics, history)
    assert text.startswith("**DeepSoftmaxAutoencoder** (encoder `MLPEncoder`, features `raw_pool`) on `synthetic`")
    assert "Best epoch 1 of 3 by `val/ce`" in text
    rows = [line for line in text.splitlines() if line.startswith("| ") and "best checkpoint" not in line]
    assert rows == ["| acc | 0.5000 | 0.7500 |", "| knn_acc_bottleneck | - | 0.6250 |", "| track_acc | - | 1.0000 |"]
    assert "Best epoch" not in description(cfg, metrics, [])  # no history: no epoch is claimed
