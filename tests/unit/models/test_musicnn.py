"""Pretrained musicnn as an encoder: its weights read without TensorFlow, the PyTorch port against musicnn's own graph,
the float32 front-end, freezing and the backbone's learning rate, checkpoints that load without the package, the CLI."""

from __future__ import annotations

import importlib.util

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from genre_style.data import front_ends
from genre_style.data.audio import ClipSpec
from genre_style.errors import UserError
from genre_style.models.pretrained import musicnn
from genre_style.models.pretrained.musicnn import INSTALL, MusicnnEncoder
from genre_style.models.pretrained.tf_checkpoint import CheckpointFormatError, read_checkpoint
from tests.conftest import FAST_RUN, labelled_clips, run_cli, write_wav
from tests.fixtures.musicnn_reference import FIXTURE, reference_patches, reference_signals
from tests.pretrained import needs_musicnn

SHAPE = (96, 187)  # one clip of features=musicnn_mel: 96 bands x 187 frames (47616 samples at 16 kHz)
ENCODER = "genre_style.models.pretrained.musicnn.MusicnnEncoder"


def _without_musicnn(monkeypatch: pytest.MonkeyPatch) -> None:
    """As if the musicnn package were not installed."""
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "musicnn" else find_spec(name, *a))


# --- the weights, without TensorFlow --------------------------------------------------------------------------


@needs_musicnn
def test_the_checkpoint_reader_reads_musicnns_variables_with_numpy_alone():
    tensors = read_checkpoint(f"{musicnn.checkpoint_prefix('MSD_musicnn')}/")
    assert tensors["conv2d/kernel"].shape == (7, 38, 1, 204)  # timbral: 7 frames x 38 of the 96 bands, 1.6 x 128 filters
    assert tensors["conv2d_5/kernel"].shape == (7, 561, 1, 64)  # the first mid-end layer reads the front-end's 561 channels
    assert tensors["dense/kernel"].shape == (1506, 200) and tensors["dense_1/kernel"].shape == (200, 50)
    assert tensors["batch_normalization_9/moving_variance"].dtype == np.float32
    assert "dense/kernel/Adam" in tensors  # the optimiser's slots are in the file too; the converter takes what it needs
    state = musicnn.convert(tensors, "musicnn")
    assert state["frontend.timbral.0.conv.weight"].shape == (204, 1, 7, 38)
    assert state["midend.0.layer.conv.weight"].shape == (64, 561, 7)
    assert torch.equal(state["backend.dense.weight"], torch.from_numpy(tensors["dense/kernel"]).T)


def test_the_checkpoint_reader_refuses_what_is_no_checkpoint(tmp_path):
    (tmp_path / "x.index").write_bytes(b"\0" * 100)
    with pytest.raises(CheckpointFormatError, match="not a TensorFlow checkpoint index"):
        read_checkpoint(tmp_path / "x")
    with pytest.raises(FileNotFoundError, match="no TensorFlow checkpoint index"):
        read_checkpoint(tmp_path / "missing")


@needs_musicnn
def test_converted_weights_are_cached_as_a_plain_state_dict(tmp_path, monkeypatch):
    first = musicnn.converted_weights("MTT_vgg", tmp_path)
    (cached,) = (tmp_path / "pretrained").glob("musicnn-MTT_vgg-*.pt")
    assert set(torch.load(cached, weights_only=True)) == set(first)  # tensors only: loads with weights_only=True

    def no_conversion(prefix):
        raise AssertionError("converted again instead of read from the cache")

    monkeypatch.setattr("genre_style.models.pretrained.tf_checkpoint.read_checkpoint", no_conversion)
    again = musicnn.converted_weights("MTT_vgg", tmp_path)
    assert all(torch.equal(first[k], again[k]) for k in first)


def test_a_missing_musicnn_package_is_a_user_error_naming_the_install_command(monkeypatch, tmp_path):
    _without_musicnn(monkeypatch)
    with pytest.raises(UserError, match="musicnn package, which is not installed") as error:
        MusicnnEncoder(SHAPE, 64, cache_dir=str(tmp_path))
    assert error.value.fix == INSTALL == "pip install --no-deps musicnn==0.1.0"
    with pytest.raises(UserError, match="not installed"):  # the config check says it before any audio is read
        MusicnnEncoder.check_settings({"weights": "MSD_vgg", "layer": "pool5"})
    assert MusicnnEncoder(SHAPE, 64, pretrained=False)  # the architecture alone needs no package


def test_the_config_check_says_so_before_any_audio_is_read(monkeypatch, tmp_path):
    from genre_style.config_checks import validate_config
    from tests.unit.test_configs import _compose

    cfg = _compose(["encoder=musicnn", f"features={front_ends.MUSICNN}"], tmp_path)
    _without_musicnn(monkeypatch)
    with pytest.raises(UserError, match="not installed") as error:
        validate_config(cfg, overrides=[])
    assert error.value.fix == INSTALL
    with pytest.raises(UserError, match="trained on features=musicnn_mel only"):
        validate_config(_compose(["encoder=musicnn", "features=logmel"], tmp_path), overrides=[])


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"weights": "MSD_big"}, "unknown musicnn weights=MSD_big"),
        ({"weights": "MSD_vgg", "layer": "penultimate"}, "MSD_vgg has no layer=penultimate"),
        ({"freeze": "some"}, "unknown freeze=some"),
        ({"freeze": "top_k", "top_k": 6}, "top_k=6 is not between 1 and the 5 blocks"),
    ],
)
def test_bad_settings_are_user_errors(settings, message):
    with pytest.raises(UserError, match=message):
        MusicnnEncoder.check_settings({**settings, "pretrained": False})


# --- the port against musicnn's own TensorFlow graph ----------------------------------------------------------

REFERENCE = np.load(FIXTURE)
KEYS = sorted(k for k in REFERENCE.files if "/" in k)


@pytest.fixture(scope="module")
def patches() -> torch.Tensor:
    """The fixture's signals through features=musicnn_mel, as the encoder reads them: `[3, 96, 187]`."""
    return torch.from_numpy(reference_patches()).transpose(1, 2).contiguous()


@needs_musicnn
@pytest.mark.parametrize("key", KEYS)
def test_the_port_matches_musicnns_tensorflow_graph(key, patches, tmp_path):
    """tests/fixtures/musicnn_reference.npz: musicnn's graph (TensorFlow 2.21, tf.compat.v1) on the same patches.
    Measured: <= 2e-5 on every embedding layer; max_pool's largest values (~100) differ by 2e-4, float32's rounding
    (each implementation is ~1.5e-4 from a float64 run of the port), hence 1e-4 absolute or relative."""
    weights, layer = key.split("/")
    encoder = MusicnnEncoder(SHAPE, 8, weights=weights, layer=layer, cache_dir=str(tmp_path)).eval()
    with torch.no_grad():
        out = encoder.backbone(patches.transpose(1, 2)).numpy()
    np.testing.assert_allclose(out, REFERENCE[key], rtol=1e-4, atol=1e-4)


def test_the_front_end_gives_float32_maps_at_16_khz_only():
    """Its values against librosa's melspectrogram: tests/unit/data/test_spectral.py."""
    signals = reference_signals()
    spec = ClipSpec(sample_rate=16000, segment_samples=signals.shape[1], features=front_ends.MUSICNN)
    assert spec.feature_shape == SHAPE
    maps = front_ends.get(front_ends.MUSICNN).compute(signals, spec)
    assert maps.dtype == np.float32 and maps.shape == (3, 96 * 187) and np.isfinite(maps).all()
    with pytest.raises(UserError, match="works at data.clips.sample_rate=16000, not 22050"):  # ClipSpec's own rule
        ClipSpec(features=front_ends.MUSICNN)


# --- freezing and the backbone's learning rate ----------------------------------------------------------------


def _grads(module: torch.nn.Module) -> dict[str, bool]:
    return {name: p.grad is not None for name, p in module.named_parameters()}


@pytest.mark.parametrize(
    "freeze, top_k, trained",
    [("all", 1, []), ("top_k", 2, ["midend.2", "backend"]), pytest.param("none", 1, None, marks=pytest.mark.slow)],
)
def test_frozen_blocks_get_no_gradient_and_keep_their_statistics(freeze, top_k, trained):
    torch.manual_seed(0)
    encoder = MusicnnEncoder(SHAPE, 16, freeze=freeze, top_k=top_k, pretrained=False).train()
    before = {k: v.clone() for k, v in encoder.backbone.state_dict().items()}
    encoder(torch.rand(4, *SHAPE) * 3).square().sum().backward()
    grads = _grads(encoder.backbone)
    expected = {name: trained is None or name.startswith(tuple(trained)) for name in grads}
    assert grads == expected
    assert _grads(encoder.project) == {"weight": True, "bias": True}  # the head always learns
    after = encoder.backbone.state_dict()
    for name, value in before.items():
        if "running" in name:  # a frozen block's batch norms keep their statistics; a trained block's learn them
            learns = trained is None or name.startswith(tuple(trained))
            assert torch.equal(value, after[name]) != learns, name


def test_a_frozen_backbone_is_the_same_function_in_training_and_evaluation():
    torch.manual_seed(0)
    encoder = MusicnnEncoder(SHAPE, 16, pretrained=False, dropout=0.0)
    x = torch.rand(3, *SHAPE)
    with torch.no_grad():
        assert torch.equal(encoder.train()(x), encoder.eval()(x))


def test_the_fixed_front_end_pools_first_and_gives_the_same_values():
    """Eval mode computes each clip's max over bands before ReLU and batch norm (from the max or the min, by the sign
    of the norm's scale): the values of TensorFlow's order, conv -> ReLU -> BN -> max, on the whole batch."""
    from genre_style.speedups import channels_last_pays

    torch.manual_seed(0)
    net = MusicnnEncoder(SHAPE, 16, pretrained=False).backbone
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):  # scales of both signs, statistics away from 0 and 1
            module.weight.data.uniform_(-1, 1)
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2)
    frontend = net.frontend.eval()
    x = torch.rand(5, 1, 187, 96) * 3
    with torch.no_grad():
        tensorflow_order = frontend._maps(x, lambda block, z: block.norm(torch.relu(z)).amax(dim=3))
        np.testing.assert_allclose(frontend(x).numpy(), tensorflow_order.numpy(), rtol=1e-6, atol=1e-6)
    # and both keep the default memory layout (musicnn's band-wide kernels are slower in channels-last)
    assert not channels_last_pays(MusicnnEncoder(SHAPE, 16, pretrained=False), "cpu")
    assert not channels_last_pays(MusicnnEncoder(SHAPE, 16, weights="MSD_vgg", layer="pool5", pretrained=False), "cpu")


def _model(**encoder):
    from genre_style.models.dsae import DeepSoftmaxAutoencoder

    torch.manual_seed(0)
    node = {"_target_": ENCODER, "pretrained": False, **encoder}  # random weights unless asked: no package needed
    return DeepSoftmaxAutoencoder(
        input_shape=SHAPE,
        num_classes=4,
        class_names=["classical", "jazz", "pop", "metal"],
        encoder=node,
        optimizer={"_target_": "torch.optim.Adam", "lr": 1e-3},
    )


def test_the_backbone_learns_at_its_scaled_rate_and_frozen_weights_are_not_optimised():
    model = _model(freeze="top_k", top_k=1, backbone_lr_scale=0.1)
    heads, backbone = model.configure_optimizers().param_groups
    assert heads["lr"] == pytest.approx(1e-3) and backbone["lr"] == pytest.approx(1e-4)
    assert {id(p) for p in backbone["params"]} == {id(p) for p in model.encoder.backbone.backend.parameters()}
    optimised = {id(p) for group in (heads, backbone) for p in group["params"]}
    frozen = [p for p in model.encoder.backbone.frontend.parameters()] + [p for p in model.encoder.backbone.midend.parameters()]
    assert not optimised & {id(p) for p in frozen}
    assert {id(p) for p in model.encoder.project.parameters()} <= {id(p) for p in heads["params"]}
    # an encoder trained from scratch: one group, every parameter, as before
    from genre_style.models.dsae import DeepSoftmaxAutoencoder

    plain = DeepSoftmaxAutoencoder(input_shape=(500,), num_classes=4, class_names=list("abcd"))
    (only,) = plain.configure_optimizers().param_groups
    assert [id(p) for p in only["params"]] == [id(p) for p in plain.parameters()]


def _fit(model) -> pl.Trainer:
    from genre_style.data.datamodule import GenreDataModule

    dm = GenreDataModule.from_table(
        labelled_clips(8, 4, SHAPE),
        clips={"features": front_ends.MUSICNN, "sample_rate": front_ends.MUSICNN_RATE},  # the rate it works at
        split={"mode": "segment"},
        loader={"batch_size": 8, "minibatches_per_step": 2},
        seed=0,
    )
    trainer = pl.Trainer(
        fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(model, datamodule=dm)
    return trainer


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_training_changes_only_the_unfrozen_blocks_and_the_heads():
    model = _model(freeze="top_k", top_k=1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    _fit(model)
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert not {k for k in changed if k.startswith(("encoder.backbone.frontend", "encoder.backbone.midend"))}
    assert {"encoder.backbone.backend.dense.weight", "encoder.project.weight"} <= changed
    assert all(p.grad is None for p in model.encoder.backbone.frontend.parameters())


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
@needs_musicnn
def test_a_checkpoint_loads_through_load_model_without_the_musicnn_package(tmp_path, monkeypatch):
    from genre_style.loading import load_model

    model = _model(freeze="top_k", top_k=1, pretrained=True, cache_dir=str(tmp_path))
    trainer = _fit(model)
    trainer.save_checkpoint(tmp_path / "best.ckpt")
    saved = torch.load(tmp_path / "best.ckpt", weights_only=True)
    assert saved["hyper_parameters"]["encoder"]["pretrained"] is False  # the checkpoint holds every weight
    assert model.hparams["encoder"]["pretrained"] is True  # the live model's config is left as it was
    _without_musicnn(monkeypatch)
    embedder = load_model(tmp_path / "best.ckpt")
    x = np.random.default_rng(0).uniform(0, 3, (5, *SHAPE)).astype(np.float32)
    embeddings, logits = embedder.outputs(x)
    with torch.no_grad():
        expected = model.eval().embed(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(embeddings, expected, rtol=1e-5, atol=1e-5)
    assert logits is not None and logits.shape == (5, 4)


# --- the real entry point -------------------------------------------------------------------------------------


@needs_musicnn
@pytest.mark.slow
def test_train_with_pretrained_musicnn_then_embed_a_file(tmp_path):
    """`python -m genre_style.train encoder=musicnn features=musicnn_mel`, its top block fine-tuned; the checkpoint
    embeds a 22.05 kHz file (resampled to 16 kHz, cut into 3-s clips) through load_model."""
    from genre_style.loading import load_model

    args = [a for a in FAST_RUN if not a.startswith("data.source.synthetic.seconds")]
    out = tmp_path / "out"
    result = run_cli(
        [
            *args,
            "data.source.synthetic.seconds=6.0",  # two 3-s clips a song
            "encoder=musicnn",
            "features=musicnn_mel",
            "model.encoder.freeze=top_k",
            "trainer.max_epochs=1",
            "evaluation.disentanglement=false",
            "evaluation.interpolation_steps=0",
        ],
        out,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (checkpoint,) = out.glob("runs/*/artifacts/checkpoints/best.ckpt")
    assert (out / "cache" / "pretrained").is_dir()  # the converted weights, under paths.cache_dir
    t = np.arange(int(22050 * 7.0)) / 22050
    song = write_wav(
        tmp_path / "song.wav", (0.3 * np.sin(2 * np.pi * 330 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    )
    outputs = load_model(checkpoint).embed_file(song)
    assert outputs.embeddings.shape == (2, 64)  # 7 s: two whole 2.976-s clips
    assert np.isfinite(outputs.embeddings).all()
