"""The config check (`validate_config`), the one validation site: each value checked where it lands and named as the
user typed it, aliases, evaluation settings, downstream sets and plugins; composed with Hydra's compose API, in-process.
(Every config group composing and passing the check: tests/unit/test_configs.py.)"""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from genre_style.config_checks import validate_config
from genre_style.errors import UserError
from tests.unit.test_configs import _compose

# --- the one validation site: each value checked where it lands, named as the user typed it ------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["gamma=-0.1"], "gamma=-0.1 is outside [0.0, 1.0]"),
        (["model.gamma=1.5"], "gamma=1.5 is outside"),  # the node's value comes from the gamma alias no more: named as typed
        (["dropout=1.0"], "dropout=1.0 is outside [0.0, 1.0)"),
        (["model=two_layer", "dropout=1.0"], "dropout=1.0 is outside"),  # the two-layer net's dropout is its encoder's
        (["lr=0"], "lr=0 must be positive"),
        (["batch_size=0"], "batch_size must be a positive integer"),
        (["model=beta_tcvae", "model.tc_weight=-1"], "model.tc_weight=-1 must be >= 0"),
        (["model=vae", "model.beta=-1"], "model.beta=-1 must be >= 0"),
        (["+model.augment.freq_mask_width=2"], "model.augment.freq_mask_width=2 is outside"),
    ],
)
def test_bad_values_are_refused_once_with_the_name_the_user_typed(overrides, message, tmp_path):
    with pytest.raises(UserError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")):
        validate_config(_compose(overrides, tmp_path), overrides)


@pytest.mark.parametrize(
    "overrides, alias",
    [
        (["model=two_layer", "gamma=0.5"], "gamma"),
        (["model=vae", "gamma=0.5"], "gamma"),  # no classifier: no gamma mix
        (["model=logreg", "lr=0.1"], "lr"),
    ],
)
def test_an_alias_the_chosen_model_ignores_is_refused(overrides, alias, tmp_path):
    with pytest.raises(UserError, match=f"{alias}=.* is not used by"):
        validate_config(_compose(overrides, tmp_path), overrides)


@pytest.mark.parametrize(
    "overrides",
    [
        ["gamma=0.5"],
        ["model=vae", "model.classifier=true", "gamma=0.5"],
        ["model=two_layer", "dropout=0.2", "lr=1e-2", "batch_size=32"],
    ],
)
def test_aliases_the_model_uses_are_accepted(overrides, tmp_path):
    validate_config(_compose(overrides, tmp_path), overrides)


@pytest.mark.parametrize(
    "overrides", [["register_as=genres"], ["register_as=genres", "logger=mlflow", "logger.mlflow.log_model=false"]]
)
def test_registering_without_a_logged_model_is_refused(overrides, tmp_path):
    with pytest.raises(UserError, match="register_as=genres needs the run's model in MLflow"):
        validate_config(_compose(overrides, tmp_path), overrides)  # _compose uses logger=none


def test_an_evaluation_setting_nobody_reads_is_refused_before_training(tmp_path):
    with pytest.raises(UserError, match="evaluation.spred_scale is not a setting of any evaluation"):
        validate_config(_compose(["+evaluation.spred_scale=1"], tmp_path))
    validate_config(_compose(["evaluation.embedding_metrics=false"], tmp_path))  # a real one passes


def test_a_downstream_set_may_be_a_folder_or_a_manifest_and_nothing_else(tmp_path):
    manifest = tmp_path / "unseen.csv"
    manifest.write_text("path,genre\nsong.wav,blues\n")
    for root in (tmp_path, manifest):
        validate_config(_compose([f"evaluation.downstream=[{{root:'{root}'}}]"], tmp_path))
    (tmp_path / "notes.txt").write_text("not a corpus")
    for root in (tmp_path / "missing", tmp_path / "notes.txt"):
        with pytest.raises(UserError, match=f"evaluation.downstream\\[0\\].root={root} is neither a folder nor a manifest"):
            validate_config(_compose([f"evaluation.downstream=[{{root:'{root}'}}]"], tmp_path))


def test_a_plugin_that_fails_while_importing_is_one_line(tmp_path, monkeypatch):
    from genre_style.config_checks import load_plugins

    (tmp_path / "broken_plugin_for_test.py").write_text("raise ValueError('a split named track is already registered')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(UserError, match="importing 'broken_plugin_for_test' failed: ValueError: a split named track"):
        load_plugins(OmegaConf.create({"plugins": ["broken_plugin_for_test"]}))
