"""The model's layout and compilation (genre_style/speedups.py): the rule `auto` follows, channels-last fits that
repeat to the bit and match the default layout, a compiled fit that matches an eager one and whose checkpoint loads."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from genre_style.callbacks.acceleration import Acceleration
from genre_style.data.datamodule import GenreDataModule
from genre_style.errors import UserError
from genre_style.inference import Embedder
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from genre_style.models.encoders import mlp_encoder
from genre_style.speedups import channels_last_pays, checked_choice, compile_pays
from tests.conftest import labelled_clips, quiet_trainer

GENRES = ["classical", "jazz", "pop", "metal"]
MAP = (16, 20)  # (bands, frames): a small log-mel map
CONV = {"_target_": "genre_style.models.encoders.LogMelCNN", "channels": [4, 8], "dropout": 0.3}


def _fit(acceleration: Acceleration, folder: Path | None = None, validate: bool = True, precision: str = "32-true"):
    pl.seed_everything(3, verbose=False)
    dm = GenreDataModule.from_table(
        labelled_clips(16, 6, MAP, GENRES),
        split={"mode": "segment", "sizes": [64, 16, 16]},
        loader={"batch_size": 16, "minibatches_per_step": 1},
        seed=3,
    )
    dm.setup("fit")
    model = DeepSoftmaxAutoencoder(
        encoder=CONV,
        embedding_dim=8,
        input_shape=dm.input_shape,
        num_classes=4,
        class_names=GENRES,
        decoder_sizes=[32],
        recon_reduction="mean",
    )
    trainer = quiet_trainer(
        2,
        callbacks=[acceleration],
        precision=precision,
        limit_val_batches=None if validate else 0,  # each new shape (val, no grad) is one more compile
    )
    trainer.fit(model, datamodule=dm)
    if folder is not None:
        trainer.save_checkpoint(folder / "model.ckpt")
    return model, dm


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_auto_compiles_only_a_long_enough_gpu_run_and_lays_out_only_conv_models_on_the_cpu():
    conv = DeepSoftmaxAutoencoder(encoder=CONV, embedding_dim=8, input_shape=MAP, num_classes=4, class_names=GENRES)
    mlp = DeepSoftmaxAutoencoder(encoder=mlp_encoder([8]), embedding_dim=8, input_shape=(50,), num_classes=4, class_names=GENRES)
    assert not compile_pays(conv, "cpu", 10**6)  # measured: a compiled step is slower on the CPU
    assert not compile_pays(conv, "cuda", 999) and compile_pays(conv, "cuda", 1000)
    assert compile_pays(mlp, "cpu", 5, True) and not compile_pays(conv, "cuda", 10**6, False)
    assert channels_last_pays(conv, "cpu") and not channels_last_pays(conv, "cuda")
    assert not channels_last_pays(mlp, "cpu", True)  # nothing to lay out
    assert checked_choice("compile", "false") is False
    with pytest.raises(UserError, match="compile='maybe' is not auto, true or false"):
        checked_choice("compile", "maybe")


def test_auto_leaves_the_built_in_demo_eager_on_any_device(tmp_path):
    from hydra.utils import instantiate

    from tests.unit.test_configs import _compose

    cfg = _compose(["experiment=demo"], tmp_path)
    model = instantiate(cfg.model, input_shape=(500,), num_classes=4, class_names=GENRES)
    steps = cfg.trainer.max_epochs * 100  # far more than the demo takes: the rule must not hinge on the count
    for device_type in ("cpu", "cuda"):
        assert not compile_pays(model, device_type, steps, cfg.callbacks.acceleration.compile)
        assert not channels_last_pays(model, device_type, cfg.callbacks.acceleration.channels_last)


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_a_tiny_run_stays_eager_under_auto_and_a_channels_last_fit_repeats_to_the_bit():
    first, second = Acceleration(), Acceleration()
    a, _ = _fit(first)
    b, _ = _fit(second)
    assert not first.compiled and first.layout == "channels_last"
    assert a.encoder.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    assert all(torch.equal(x, y) for x, y in zip(_weights(a).values(), _weights(b).values()))
    default, _ = _fit(Acceleration(channels_last=False))
    for name, value in _weights(default).items():  # the same math but for float reassociation
        torch.testing.assert_close(value, _weights(a)[name], atol=1e-4, rtol=1e-3)


@pytest.mark.slow  # ~25 s: Inductor compiles the forward and backward graphs cold
def test_a_compiled_fit_matches_an_eager_one_repeats_to_the_bit_and_its_checkpoint_loads_in_embed(tmp_path, monkeypatch):
    import torch._inductor.config as inductor

    monkeypatch.setattr(inductor, "fallback_random", True)  # dropout draws from torch's generator, as eager does
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    eager, _ = _fit(Acceleration(compile=False, channels_last=False), validate=False)
    compiled_run = Acceleration(compile=True, channels_last=False)
    compiled, dm = _fit(compiled_run, folder=tmp_path, validate=False)
    assert compiled_run.compiled
    for name, value in _weights(eager).items():
        torch.testing.assert_close(_weights(compiled)[name], value, atol=1e-4, rtol=1e-3)
    again, _ = _fit(Acceleration(compile=True, channels_last=False), validate=False)  # Inductor's cache: seconds
    assert all(torch.equal(a, b) for a, b in zip(_weights(compiled).values(), _weights(again).values()))
    embedder = Embedder.from_checkpoint(tmp_path / "model.ckpt")  # a plain eager model from the compiled run's weights
    clips = dm.tensors["test"][0][:8]
    embeddings, logits = embedder.outputs(clips.numpy())
    eager.eval()
    with torch.no_grad():
        expected = eager(clips)
    np.testing.assert_allclose(embeddings, expected.embedding.numpy(), atol=1e-3, rtol=1e-3)
    np.testing.assert_allclose(logits, expected.logits.numpy(), atol=1e-3, rtol=1e-3)


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_bf16_on_a_cpu_without_bf16_hardware_trains_and_says_it_is_emulated(monkeypatch, caplog):
    import genre_style.callbacks.acceleration as acceleration

    monkeypatch.setattr(acceleration, "bf16_is_native", lambda: False)  # as on this project's CPU machine
    with caplog.at_level("WARNING", logger="genre_style.callbacks.acceleration"):
        model, _ = _fit(Acceleration(), validate=False, precision="bf16-mixed")
    assert "trainer.precision=bf16-mixed on a CPU without bfloat16 hardware" in caplog.text
    assert all(torch.isfinite(v).all() for v in _weights(model).values())
