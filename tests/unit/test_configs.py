"""Every config group composes, passes the config check and builds a model that Lightning can fit, in-process.

Each combination of objective, encoder and front-end (and each experiment) is composed with Hydra's compose API,
checked by `validate_config`, instantiated from the config with the front-end's clip shape, and run through
`fast_dev_run` on random clips of that shape: a config mistake fails here in seconds, not in a subprocess.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from genre_style.config_checks import validate_config
from genre_style.data import front_ends
from genre_style.data.audio import ClipSpec
from genre_style.data.clip_table import ClipTable
from genre_style.data.datamodule import GenreDataModule
from genre_style.errors import UserError
from tests.fixtures.hf_tiny import FOLDER as HF_TINY
from tests.fixtures.hf_tiny import OVERRIDES as HF_TINY_DATA

CONF = Path(__file__).resolve().parents[2] / "conf"
MODELS = sorted(p.stem for p in (CONF / "model").glob("*.yaml"))
ENCODERS = sorted(p.stem for p in (CONF / "encoder").glob("*.yaml"))
FEATURES = sorted(p.stem for p in (CONF / "features").glob("*.yaml"))
SMALL = {"logmel_cnn": ["model.encoder.channels=[4,8]"], "sample_cnn": ["model.encoder.channels=[4,8,8]"]}
# Pretrained encoders fitted with random weights here (no package needed); their weights: tests/unit/models/test_musicnn.py.
SMALL |= {
    e: ["model.encoder.pretrained=false", "data.clips.segment_samples=24320"] for e in ("musicnn", "musicnn_vgg")
}  # 96 frames
SMALL["hf"] = [f"model.encoder.model={HF_TINY}", *HF_TINY_DATA]  # a tiny HuBERT in a folder: tests/unit/models/test_hf_encoder.py


def _reads(encoder: str) -> tuple[str, ...]:
    """The front-end kinds an encoder's class declares it reads."""
    node = OmegaConf.load(CONF / "encoder" / f"{encoder}.yaml")
    return tuple(get_class(node.model.encoder._target_).reads)


def _kind(features: str) -> str:
    return front_ends.get(str(OmegaConf.load(CONF / "features" / f"{features}.yaml").clips.features)).kind


def _fits(encoder: str, features: str) -> bool:
    """The encoder reads the front-end's kind, and it is the one front-end a pretrained encoder was trained on."""
    required = get_class(OmegaConf.load(CONF / "encoder" / f"{encoder}.yaml").model.encoder._target_).front_end
    name = str(OmegaConf.load(CONF / "features" / f"{features}.yaml").clips.features)
    return _kind(features) in _reads(encoder) and required in (None, name)


# Every encoder yaml with every front-end yaml: those that fit are fitted, the others refused.
FITTING = [(e, f) for e in ENCODERS for f in FEATURES if _fits(e, f)]
REFUSED = [(e, f) for e in ENCODERS for f in FEATURES if not _fits(e, f)]


def _compose(overrides: list[str], tmp_path: Path):
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return compose(
            config_name="train",
            overrides=[
                f"paths.output_root={tmp_path}",
                f"paths.output_dir={tmp_path}/run",
                "data=synthetic",
                "logger=none",
                *overrides,
            ],
        )


def _fit(cfg) -> pl.Trainer:
    """Random clips of the configured front-end's shape, through the configured model, one fast_dev_run."""
    spec = ClipSpec(**cfg.data.clips)
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 16)
    table = ClipTable(
        features=rng.standard_normal((64, *spec.feature_shape)).astype(np.float32),
        labels=labels,
        track_index=np.arange(64) // 4,
        genres=["classical", "jazz", "pop", "metal"],
        track_ids=[f"t{i}" for i in range(16)],
        track_labels=np.repeat(np.arange(4), 4),
    )
    dm = GenreDataModule.from_table(
        table, clips=spec, split={"mode": "segment"}, loader={"batch_size": 8, "minibatches_per_step": 2}, seed=0
    )
    dm.setup("fit")
    model = instantiate(
        cfg.model, input_shape=dm.input_shape, input_kind=dm.input_kind, num_classes=4, class_names=dm.class_names
    )
    trainer = pl.Trainer(
        fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(model, datamodule=dm)
    return trainer


# Every fitting (encoder, front-end) pair with the DSAE (encoder, decoder and classifier at once), and every objective
# with every encoder on the encoder's first front-end: a new yaml in any of the three groups is fitted here.
COMBINATIONS = sorted(
    {("dsae", e, f) for e, f in FITTING} | {(m, e, next(f for g, f in FITTING if g == e)) for m in MODELS for e in ENCODERS}
)


def _covering(combinations: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    """A few combinations in which every value of every position appears at least once (greedy set cover).

    A Hydra compose takes ~0.25 s: `make test-fast` checks each yaml once this way, the full suite every combination.
    """
    wanted = {(i, v) for c in combinations for i, v in enumerate(c)}
    chosen: list[tuple[str, ...]] = []
    while wanted:
        best = max(combinations, key=lambda c: len(wanted & set(enumerate(c))))
        chosen.append(best)
        wanted -= set(enumerate(best))
    return sorted(chosen)


def _tiered(combinations: list[tuple[str, ...]]) -> list:
    """Every combination: the covering ones in the fast tier, the rest marked slow."""
    covering = set(_covering(combinations))
    return [c if c in covering else pytest.param(*c, marks=pytest.mark.slow) for c in combinations]


@pytest.mark.parametrize("model,encoder,features", _tiered(COMBINATIONS))
def test_every_objective_encoder_and_front_end_composes_and_passes_the_config_check(model, encoder, features, tmp_path):
    validate_config(_compose([f"model={model}", f"encoder={encoder}", f"features={features}", *SMALL.get(encoder, [])], tmp_path))


def test_the_fast_tier_still_composes_every_objective_encoder_and_front_end():
    covering = _covering(COMBINATIONS)
    for position, values in enumerate((MODELS, ENCODERS, FEATURES)):
        assert {c[position] for c in covering} == set(values)
    assert len(covering) < len(COMBINATIONS) / 2


@pytest.mark.slow  # in-process Lightning fits (~1-10 s each): the full suite runs them, `make test-fast` the check above
@pytest.mark.parametrize("model,encoder,features", COMBINATIONS)
def test_every_objective_encoder_and_front_end_composes_and_fits(model, encoder, features, tmp_path):
    cfg = _compose([f"model={model}", f"encoder={encoder}", f"features={features}", *SMALL.get(encoder, [])], tmp_path)
    validate_config(cfg)
    trainer = _fit(cfg)
    assert trainer.state.finished


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF / "experiment").glob("*.yaml")))
def test_every_experiment_composes_and_passes_the_config_check(experiment, tmp_path):
    cfg = _compose([f"experiment={experiment}"], tmp_path)
    validate_config(cfg)
    if experiment == "best":
        assert cfg.model.encoder._target_.endswith("LogMelCNN") and cfg.data.clips.features == "logmel"


@pytest.mark.slow  # an in-process Lightning fit
def test_experiment_best_fits_at_its_test_size(tmp_path):
    assert _fit(_compose(["experiment=best", *SMALL["logmel_cnn"]], tmp_path)).state.finished


@pytest.mark.parametrize("encoder,features", _tiered(REFUSED))
def test_an_encoder_that_cannot_read_the_front_end_is_refused(encoder, features, tmp_path):
    with pytest.raises(UserError, match=f"cannot read features={features}"):
        validate_config(_compose([f"encoder={encoder}", f"features={features}"], tmp_path))


def test_every_front_end_has_a_config_and_every_config_a_front_end():
    assert sorted(str(OmegaConf.load(CONF / "features" / f"{f}.yaml").clips.features) for f in FEATURES) == sorted(
        front_ends.REGISTRY
    )
    assert {"raw_pool", "logmel", "mfcc", "waveform", "stats"} <= set(front_ends.REGISTRY)
    assert REFUSED and FITTING  # the kinds do tell encoders apart
