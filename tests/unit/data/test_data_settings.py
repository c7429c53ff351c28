"""The data settings by concern (genre_style/data/settings.py): each group built from its yaml, each rule checked once
beside the settings it reads, and every old flat `data.<key>` answered in one line naming its new place."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from genre_style.data.audio import ClipSpec
from genre_style.data.datamodule import GenreDataModule
from genre_style.data.settings import (
    BECAME_GROUPS,
    CONCERNS,
    GROUPS,
    MOVED,
    DataSettings,
    LoaderSettings,
    SourceSettings,
    check_typed_overrides,
)
from genre_style.errors import UserError
from tests.conftest import REPO, run_cli
from tests.unit.test_configs import _compose


def test_each_group_of_the_yaml_is_exactly_its_class_fields():
    """conf/data/gtzan.yaml spells every setting of every group, and nothing a class does not take."""
    conf = yaml.safe_load((REPO / "conf" / "data" / "gtzan.yaml").read_text())
    assert set(CONCERNS) <= set(conf)
    for group, kind in GROUPS.items():
        assert set(conf[group]) == {f.name for f in dataclasses.fields(kind)}, group


def test_the_composed_default_config_builds_the_settings_the_data_module_uses(tmp_path):
    cfg = _compose([], tmp_path)
    settings = DataSettings.from_config(cfg.data)
    assert settings.clips == ClipSpec()  # the yaml's clip settings are the paper's, as ClipSpec's defaults
    assert settings.split.mode == "track" and settings.store.mode == "auto" and settings.loader.batch_size == 64
    module = GenreDataModule(**{group: cfg.data[group] for group in CONCERNS}, seed=0)
    assert module.settings == settings and module.spec == settings.clips


def test_groups_may_be_given_as_settings_objects():
    clips = ClipSpec(features="logmel", n_fft=1024, frame_hop=256, n_mels=64)
    module = GenreDataModule(source=SourceSettings(root="x"), clips=clips, loader=LoaderSettings(standardize=True))
    assert module.spec is clips and module.input_shape == (64, 79) and module.standardize


@pytest.mark.parametrize("key", sorted({**MOVED, **BECAME_GROUPS}))
def test_every_old_flat_key_names_its_new_place(key):
    new = MOVED.get(key) or BECAME_GROUPS[key]
    with pytest.raises(UserError) as raised:
        DataSettings.from_config({"source": {"root": "x"}, key: "value"})
    assert raised.value.problem == f"data.{key} has moved to data.{new}"
    with pytest.raises(UserError, match=rf"data\.{key} has moved"):
        check_typed_overrides([f"+data.{key}=value"])


def test_new_keys_and_other_overrides_pass_the_command_line_check():
    check_typed_overrides(["data.source.root=/x", "data.split.mode=segment", "model=dsae", "data=synthetic", "gamma=0.5"])
    check_typed_overrides(["data.split={mode:segment}"])  # a whole group is a group


@pytest.mark.parametrize(
    "groups, message",
    [
        ({"split": {"mode": "by_mood"}}, "unknown data.split.mode='by_mood'"),
        ({"store": {"mode": "cloud"}}, "unknown data.store.mode='cloud'"),
        ({"clips": {"features": "chroma"}}, "unknown front-end features='chroma'"),
        ({"clips": {"pool": 30000}}, "data.clips.pool=30000 is longer than a clip"),
        ({"clips": {"features": "musicnn_mel"}}, "works at data.clips.sample_rate=16000, not 22050"),
        ({"split": {"eval_clips_per_track": 21}}, "eval_clips_per_track=21 must be between 1 and data.clips.clips_per_track=20"),
        ({"clips": {"features": "stats"}, "loader": {"random_crop": True}}, "random_crop=true needs features with a time axis"),
        ({"loader": {"batchsize": 8}}, "data.loader.batchsize is not a data.loader setting"),
        ({"source": {"genres": "all"}}, "data.source.root is not set"),
    ],
)
def test_each_rule_answers_in_one_line_where_it_lives(groups, message):
    data = {"source": {"root": "x"}, **groups} if "source" not in groups else groups
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace("[", r"\[")) as raised:
        DataSettings.from_config(data)
    assert "\n" not in str(raised.value.problem)


def test_the_config_check_and_the_data_module_ask_the_same_rule(tmp_path):
    """One rule, two callers: the config check (before anything heavy) and the constructor (Python callers)."""
    from genre_style.config_checks import validate_config

    overrides = ["data.split.eval_clips_per_track=30"]
    with pytest.raises(UserError, match="eval_clips_per_track=30 must be between") as checked:
        validate_config(_compose(overrides, tmp_path), overrides)
    with pytest.raises(UserError) as built:
        GenreDataModule(source={"root": "x"}, split={"eval_clips_per_track": 30})
    assert str(checked.value) == str(built.value)


@pytest.mark.slow  # a subprocess: the command as a user types it
def test_an_old_flat_key_on_the_command_line_is_one_line(tmp_path):
    result = run_cli(["data.root=/music/gtzan", "trainer.max_epochs=1"], tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "genre-style: error: data.root has moved to data.source.root",
        "  fix: write data.source.root=... (the data settings are grouped: docs/data.md)",
    ]
    assert not (tmp_path / "runs").exists()  # refused before anything ran
