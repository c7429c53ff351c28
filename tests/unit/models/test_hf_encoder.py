"""encoder=hf: a transformers audio model as the backbone, on tiny randomly initialised models saved to a folder and
loaded by path (the real loading code): layers and their weighted sum, the model's input preparation, freezing,
training, checkpoints that load again offline without the folder, and the one-line errors."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from genre_style.data import front_ends
from genre_style.errors import UserError
from genre_style.models.pretrained.hf import INSTALL, HFEncoder
from tests.conftest import labelled_clips
from tests.fixtures.hf_tiny import FOLDER, OVERRIDES, SAMPLES, TINY, save

transformers = pytest.importorskip("transformers")  # in .[dev] and .[pretrained]: CI has it
# transformers' model classes cost ~3 s a process before the first test and the tests ~5 s more: the full suite runs
# them, `make test-fast` leaves them out (the hf encoder's config still composes there: tests/unit/test_configs.py)
pytestmark = pytest.mark.slow

ENCODER = "genre_style.models.pretrained.hf.HFEncoder"


def _save_tiny(folder: Path, normalize: bool = True) -> Path:
    """tests/fixtures/hf_tiny.py's tiny HuBERT, with dropout on: a frozen backbone must still be the same function
    in training mode."""
    return save(folder, normalize, hidden_dropout=0.3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny HuBERT and its wav2vec2 feature extractor (16 kHz, per-clip normalisation), as save_pretrained writes them."""
    return _save_tiny(tmp_path_factory.mktemp("hf") / "tiny-hubert")


def _clips(n: int = 3, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(0.1 * np.random.default_rng(seed).normal(size=(n, SAMPLES)).astype(np.float32))


def _reference_states(folder: Path, x: torch.Tensor) -> list[torch.Tensor]:
    """Every hidden state of the whole model, straight from transformers: the feature extractor's output through
    AutoModel.from_pretrained, each averaged over time."""
    extractor = transformers.AutoFeatureExtractor.from_pretrained(folder)
    inputs = extractor(list(x.numpy()), sampling_rate=16000, return_tensors="pt").input_values
    model = transformers.AutoModel.from_pretrained(folder).eval()
    with torch.no_grad():
        return [h.mean(dim=1) for h in model(inputs, output_hidden_states=True).hidden_states]


# --- loading, layers, the model's input -------------------------------------------------------------------------


@pytest.mark.parametrize("layer, index, built", [(0, 0, 1), (2, 2, 2), (-1, 3, 3)])
def test_a_chosen_layer_is_the_models_own_hidden_state_and_only_the_layers_below_it_are_built(tiny, layer, index, built):
    x = _clips()
    encoder = HFEncoder((SAMPLES,), 8, model=str(tiny), layer=layer, sample_rate=16000).eval()
    assert len(encoder.layers) == built and encoder.model.config.num_hidden_layers == built  # cut at the layer
    with torch.no_grad():
        features = encoder.backbone_features(x)
        embedding = encoder(x)
    assert features.shape == (3, 1, 32) and embedding.shape == (3, 8)
    torch.testing.assert_close(features[:, 0], _reference_states(tiny, x)[index], rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "kind, extra",
    [
        ("WavLMConfig", {}),  # relative position bias handed from layer to layer
        ("Data2VecAudioConfig", {}),  # a list of positional convolutions named `layers` too
        ("Wav2Vec2Config", {"do_stable_layer_norm": True, "feat_extract_norm": "layer"}),  # wav2vec2-large's layout
    ],
)
def test_other_wav2vec2_kinds_give_their_own_hidden_states(kind, extra, tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / kind
    transformers.AutoModel.from_config(getattr(transformers, kind)(**{**TINY, **extra})).save_pretrained(folder)
    transformers.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder)
    x = _clips()
    with torch.no_grad():
        states = torch.stack(_reference_states(folder, x), dim=1)
        for layer in (1, "weighted"):
            features = HFEncoder((SAMPLES,), 8, model=str(folder), layer=layer).eval().backbone_features(x)
            expected = states if layer == "weighted" else states[:, 1:2]
            torch.testing.assert_close(features, expected, rtol=1e-4, atol=1e-5)


def test_the_weighted_sum_starts_equal_and_learns_its_softmax_weights(tiny):
    x = _clips()
    encoder = HFEncoder((SAMPLES,), 32, model=str(tiny), layer="weighted", project=False, sample_rate=16000)
    encoder.eval()
    reference = torch.stack(_reference_states(tiny, x), dim=1)  # [3, 4 hidden states, 32]
    with torch.no_grad():
        features = encoder.backbone_features(x)
        torch.testing.assert_close(features, reference, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(encoder(x), reference.mean(dim=1), rtol=1e-4, atol=1e-5)  # equal weights at the start
        encoder.layer_weights.copy_(torch.tensor([0.0, 0.0, 0.0, 30.0]))  # all on the top layer
        torch.testing.assert_close(encoder(x), reference[:, 3], rtol=1e-4, atol=1e-5)
    encoder(x).pow(2).sum().backward()
    assert encoder.layer_weights.grad is not None and encoder.layer_weights.grad.abs().sum() > 0


def test_the_input_is_prepared_as_the_models_feature_extractor_does(tiny, tmp_path):
    x = torch.from_numpy(np.random.default_rng(1).uniform(-0.5, 0.9, (2, SAMPLES)).astype(np.float32))
    encoder = HFEncoder((SAMPLES,), 8, model=str(tiny), layer=1)
    expected = encoder.extractor(list(x.numpy()), sampling_rate=16000, return_tensors="pt").input_values
    torch.testing.assert_close(encoder.model_input(x), expected, rtol=1e-5, atol=1e-5)  # zero mean, unit variance
    raw = HFEncoder((SAMPLES,), 8, model=str(_save_tiny(tmp_path / "raw", normalize=False)), layer=1)
    assert torch.equal(raw.model_input(x), x)  # do_normalize=false: the samples as they are
    # an AST reads its feature extractor's filter-bank frames: the extractor itself prepares the batch
    ast_folder = tmp_path / "ast"
    config = transformers.ASTConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, max_length=48, num_mel_bins=32
    )
    transformers.AutoModel.from_config(config).save_pretrained(ast_folder)
    transformers.ASTFeatureExtractor(num_mel_bins=32, max_length=48).save_pretrained(ast_folder)
    ast = HFEncoder((SAMPLES,), 8, model=str(ast_folder), layer=2).eval()
    frames = ast.model_input(x)
    assert frames.shape == (2, 48, 32)
    torch.testing.assert_close(frames, ast.extractor(list(x.numpy()), sampling_rate=16000, return_tensors="pt").input_values)
    assert ast(x).shape == (2, 8)


def test_mert_v1_configs_are_read_as_the_hubert_they_are(tiny, tmp_path):
    """MERT-v1's config.json names its own Hub code (model type mert_model, a HuBERT subclass): read as HuBERT, no
    code fetched; a MERT-only part (deepnorm) is refused."""
    mert = tmp_path / "mert"
    shutil.copytree(tiny, mert)
    config = json.loads((mert / "config.json").read_text())
    config.update(
        model_type="mert_model",
        architectures=["MERTModel"],
        auto_map={"AutoConfig": "configuration_MERT.MERTConfig", "AutoModel": "modeling_MERT.MERTModel"},
        attention_relax=-1.0,
        deepnorm=False,
        feature_extractor_cqt=False,
    )
    (mert / "config.json").write_text(json.dumps(config))
    x = _clips()
    with torch.no_grad():
        loaded = HFEncoder((SAMPLES,), 8, model=str(mert), layer=2).eval()
        assert type(loaded.model).__name__ == "HubertModel"
        torch.testing.assert_close(loaded.backbone_features(x)[:, 0], _reference_states(tiny, x)[2], rtol=1e-4, atol=1e-5)
    (mert / "config.json").write_text(json.dumps({**config, "deepnorm": True}))
    with pytest.raises(UserError, match="uses MERT's deepnorm, which only its own Hub code implements"):
        HFEncoder((SAMPLES,), 8, model=str(mert))
    (mert / "config.json").write_text(json.dumps({**config, "model_type": "my_own_audio_model"}))
    with pytest.raises(UserError, match="'my_own_audio_model' model, which transformers does not define"):
        HFEncoder.check_settings({"model": str(mert)})


# --- freezing and the backbone's learning rate ---------------------------------------------------------------


def _model(folder: Path, **encoder):
    from genre_style.models.dsae import DeepSoftmaxAutoencoder

    torch.manual_seed(0)
    return DeepSoftmaxAutoencoder(
        input_shape=(SAMPLES,),
        num_classes=4,
        class_names=["classical", "jazz", "pop", "metal"],
        encoder={"_target_": ENCODER, "model": str(folder), "sample_rate": 16000, **encoder},
        optimizer={"_target_": "torch.optim.Adam", "lr": 1e-3},
        embedding_dim=8,
    )


@pytest.mark.parametrize("freeze, top_k, trained", [("all", 1, []), ("top_k", 1, [1]), ("top_k", 2, [0, 1]), ("none", 1, [0, 1])])
def test_frozen_weights_get_no_gradient_and_top_k_trains_the_layers_below_the_chosen_one(tiny, freeze, top_k, trained):
    encoder = HFEncoder((SAMPLES,), 8, model=str(tiny), layer=2, freeze=freeze, top_k=top_k).train()
    encoder(_clips()).sum().backward()
    for i, layer in enumerate(encoder.layers):
        grads = [p.grad for p in layer.parameters()]
        assert all(g is not None for g in grads) if i in trained else all(g is None for g in grads), (freeze, i)
        assert layer.training == (i in trained)  # frozen layers stay in eval mode: their dropout is off
    bottom = list(encoder.model.feature_extractor.parameters())  # the convolutional feature encoder
    assert all(p.grad is None for p in bottom) or freeze == "none"
    assert encoder.project.weight.grad is not None
    backbone = {id(p) for p in encoder.backbone_parameters()}
    assert backbone == {id(p) for i in trained for p in encoder.layers[i].parameters()} or freeze == "none"


def test_a_frozen_backbone_is_the_same_function_in_training_and_evaluation(tiny):
    encoder = HFEncoder((SAMPLES,), 8, model=str(tiny), layer=-1)  # hidden_dropout 0.3: it would differ if it trained
    x = _clips()
    with torch.no_grad():
        assert torch.equal(encoder.train().backbone_features(x), encoder.eval().backbone_features(x))


def test_the_backbone_learns_at_its_scaled_rate_and_frozen_weights_are_not_optimised(tiny):
    model = _model(tiny, layer=2, freeze="top_k", top_k=1, backbone_lr_scale=0.1)
    heads, backbone = model.configure_optimizers().param_groups
    assert heads["lr"] == pytest.approx(1e-3) and backbone["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in backbone["params"]} == {id(p) for p in model.encoder.layers[1].parameters()}
    optimised = {id(p) for group in (heads, backbone) for p in group["params"]}
    assert not optimised & {id(p) for p in model.encoder.layers[0].parameters()}
    assert not optimised & {id(p) for p in model.encoder.model.feature_extractor.parameters()}
    frozen = _model(tiny, layer="weighted")
    (only,) = frozen.configure_optimizers().param_groups  # freeze=all: the heads and the layer weights alone
    assert id(frozen.encoder.layer_weights) in {id(p) for p in only["params"]}
    assert not {id(p) for p in only["params"]} & {id(p) for p in frozen.encoder.model.parameters()}


def _fit(model) -> pl.Trainer:
    from genre_style.data.datamodule import GenreDataModule

    dm = GenreDataModule.from_table(
        labelled_clips(8, 4, (SAMPLES,)),
        clips={"features": front_ends.HF_WAVEFORM},
        split={"mode": "segment"},
        loader={"batch_size": 8},
        seed=0,
    )
    trainer = pl.Trainer(
        fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(model, datamodule=dm)
    return trainer


def test_training_changes_only_the_top_k_layers_and_the_heads_and_the_checkpoint_loads_offline(tiny, tmp_path, monkeypatch):
    """A DSAE over the tiny model, its top layer fine-tuned; the checkpoint holds the config and the feature
    extractor's settings, so load_model rebuilds it with the source folder gone and the Hub unreachable."""
    from genre_style.loading import load_model

    folder = Path(shutil.copytree(tiny, tmp_path / "model"))
    model = _model(folder, layer=2, freeze="top_k", top_k=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = _fit(model)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert {k for k in changed if k.startswith("encoder.model.")} <= {k for k in changed if ".layers.1." in k}
    assert any(".layers.1." in k for k in changed) and "encoder.project.weight" in changed
    trainer.save_checkpoint(tmp_path / "best.ckpt")
    saved = torch.load(tmp_path / "best.ckpt", weights_only=True)["hyper_parameters"]["encoder"]
    assert saved["pretrained"] is False and saved["config"]["model_type"] == "hubert"
    assert saved["config"]["num_hidden_layers"] == 2 and saved["feature_extractor"]["sampling_rate"] == 16000
    assert model.hparams["encoder"].get("config") is None  # the live model's config is left as it was
    shutil.rmtree(folder)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    embedder = load_model(tmp_path / "best.ckpt")  # model_files' checks: plain data, a genre_style encoder
    x = _clips(5, seed=3).numpy()
    embeddings, logits = embedder.outputs(x)
    with torch.no_grad():
        expected = model.eval().embed(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(embeddings, expected, rtol=1e-5, atol=1e-5)
    assert logits is not None and logits.shape == (5, 4)


def test_a_frozen_backbone_offers_its_outputs_to_the_cache(tiny, tmp_path):
    """freeze=all: the model's part is a fixed function whose flattened outputs the cache may hold; the heads (the
    layer weights, the projection) read them back; fine-tuned, there is nothing to cache."""
    pytest.importorskip("genre_style.models.pretrained.cache")
    encoder = HFEncoder((SAMPLES,), 8, model=str(tiny), layer="weighted").eval()
    backbone = encoder.frozen_backbone()
    assert backbone is not None and backbone.module is encoder.model and backbone.output_dim == 4 * 32
    x = _clips()
    with torch.no_grad():
        cached = backbone.forward(x)
        direct = encoder(x)
        encoder.cached_input = True
        torch.testing.assert_close(encoder(cached), direct)
    assert "layer=weighted" in backbone.description and str(tiny) in backbone.description
    raw = HFEncoder((SAMPLES,), 8, model=str(_save_tiny(tmp_path / "raw", normalize=False)), layer="weighted")
    digests = [b.description.rpartition("input=")[2] for b in (backbone, raw.frozen_backbone())]
    assert digests[0] != digests[1]  # the input's preparation (do_normalize) is part of the identity
    assert HFEncoder((SAMPLES,), 8, model=str(tiny), freeze="top_k").frozen_backbone() is None


# --- one-line errors ---------------------------------------------------------------------------------------------


def test_a_missing_transformers_package_names_the_install_command(tiny, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "transformers" else find_spec(name, *a))
    with pytest.raises(UserError, match="needs the transformers package, which is not installed") as error:
        HFEncoder.check_settings({"model": str(tiny)})
    assert error.value.fix == INSTALL and "pip install -e '.[pretrained]'" in INSTALL


def test_an_unreachable_hub_name_says_the_model_must_be_a_local_folder(monkeypatch, tmp_path):
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)  # as without a network, at once
    with pytest.raises(UserError, match="cannot load m-a-p/MERT-v1-95M from the Hugging Face Hub") as error:
        HFEncoder.check_settings({"model": "m-a-p/MERT-v1-95M"})
    assert "offline, the model must be a local folder" in str(error.value.fix)
    with pytest.raises(UserError, match="no such folder"):
        HFEncoder.check_settings({"model": str(tmp_path / "absent")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="is no transformers model folder"):
        HFEncoder.check_settings({"model": str(tmp_path / "empty")})


def test_a_folder_without_its_feature_extractor_is_refused(tiny, tmp_path):
    folder = Path(shutil.copytree(tiny, tmp_path / "bare"))
    (folder / "preprocessor_config.json").unlink()
    with pytest.raises(UserError, match="has no feature extractor"):
        HFEncoder((SAMPLES,), 8, model=str(folder))


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"layer": 4}, r"layer=4 is outside the model's hidden states 0..3"),
        ({"layer": "middle"}, "layer='middle' is neither a hidden-state index nor weighted"),
        ({"freeze": "some"}, "unknown freeze=some"),
        ({"layer": 1, "freeze": "top_k", "top_k": 2}, "top_k=2 is more than the 1 transformer layers up to layer=1"),
    ],
)
def test_bad_settings_are_user_errors(tiny, settings, message):
    with pytest.raises(UserError, match=message):
        HFEncoder.check_settings({"model": str(tiny), **settings})


def test_the_config_check_names_the_models_sample_rate_before_any_audio_is_read(tiny, tmp_path):
    from genre_style.config_checks import validate_config
    from tests.unit.test_configs import _compose

    base = ["encoder=hf", f"model.encoder.model={FOLDER}", f"features={front_ends.HF_WAVEFORM}"]
    with pytest.raises(UserError, match="reads audio at 16000 Hz, but data.clips.sample_rate=24000") as error:
        validate_config(_compose(base, tmp_path), overrides=[])  # waveform_hf's default: MERT-v1's 24 kHz
    assert error.value.fix == "add data.clips.sample_rate=16000"
    validate_config(_compose([*base, *OVERRIDES], tmp_path), overrides=[])
    with pytest.raises(UserError, match="trained on features=waveform_hf only"):
        validate_config(_compose(["encoder=hf", f"model.encoder.model={FOLDER}", "features=waveform"], tmp_path), overrides=[])


# --- a real training run ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_two_layer_net_learns_the_genres_on_a_frozen_tiny_model(tiny, tmp_path):
    """model=two_layer over the weighted sum of a frozen tiny HuBERT, trained for a few epochs on clips whose genre
    is a waveform prototype: the heads learn (the loss falls on the training clips, the layer weights move), the
    backbone does not, and the best checkpoint embeds through load_model as the live model does."""
    from genre_style.data.datamodule import GenreDataModule
    from genre_style.loading import load_model
    from genre_style.models.two_layer import TwoLayerNet

    torch.manual_seed(0)
    model = TwoLayerNet(
        input_shape=(SAMPLES,),
        num_classes=4,
        class_names=["classical", "jazz", "pop", "metal"],
        encoder={"_target_": ENCODER, "model": str(tiny), "layer": "weighted", "sample_rate": 16000},
        optimizer={"_target_": "torch.optim.Adam", "lr": 1e-2},
        embedding_dim=16,
    )
    dm = GenreDataModule.from_table(
        labelled_clips(16, 4, (SAMPLES,)),
        clips={"features": front_ends.HF_WAVEFORM},
        split={"mode": "segment"},
        loader={"batch_size": 16, "minibatches_per_step": 1},
        seed=0,
    )
    dm.setup("fit")
    x, y, _ = next(iter(dm.train_dataloader()))
    backbone = {k: v.clone() for k, v in model.encoder.model.state_dict().items()}

    def loss() -> float:
        with torch.no_grad():
            return float(torch.nn.functional.cross_entropy(model.eval().logits(x), y))

    before = loss()
    trainer = pl.Trainer(
        max_epochs=4,
        accelerator="cpu",
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=tmp_path,
    )
    trainer.fit(model, datamodule=dm)
    assert loss() < 0.8 * before, (loss(), before)
    assert not torch.allclose(model.encoder.layer_weights, torch.zeros(4))
    assert all(torch.equal(v, model.encoder.model.state_dict()[k]) for k, v in backbone.items())
    trainer.save_checkpoint(tmp_path / "best.ckpt")
    embeddings, _ = load_model(tmp_path / "best.ckpt").outputs(x.numpy())
    with torch.no_grad():
        np.testing.assert_allclose(embeddings, model.eval().embed(x).numpy(), rtol=1e-5, atol=1e-5)
