"""Training-time augmentation: what each switch does, and that evaluation never sees it."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from genre_style.data.clip_table import ClipTable
from genre_style.data.datamodule import GenreDataModule
from genre_style.errors import UserError
from genre_style.models.augment import Augment
from genre_style.models.dsae import DeepSoftmaxAutoencoder
from tests.conftest import quiet_trainer

CNN = {"_target_": "genre_style.models.encoders.LogMelCNN", "channels": [4, 8], "dropout": 0.0}
HEAVY = {
    "time_shift": True,
    "freq_masks": 2,
    "freq_mask_width": 0.3,
    "time_masks": 2,
    "time_mask_width": 0.3,
    "mixup_alpha": 0.4,
}


@pytest.mark.parametrize("kind", ["map", "waveform", "vector"])
def test_off_by_default_and_draws_no_random_numbers(kind):
    """Runs without augmentation reproduce to the bit only if building it and calling it draw nothing."""
    shape = {"map": (4, 8, 10), "waveform": (4, 200), "vector": (4, 16)}[kind]
    x, y = torch.randn(*shape), torch.zeros(4, dtype=torch.long)
    state = torch.random.get_rng_state()
    augment = Augment(kind=kind)
    assert not augment.active
    out, mixed = augment(x, y)
    assert torch.equal(torch.random.get_rng_state(), state)  # nothing drawn, building it or calling it
    assert torch.equal(out, x) and mixed is None


def test_time_shift_rolls_each_clip_and_keeps_its_content():
    torch.manual_seed(0)
    x = torch.arange(2 * 3 * 10, dtype=torch.float32).view(2, 3, 10)
    shifted, _ = Augment(kind="map", time_shift=True)(x, torch.zeros(2, dtype=torch.long))
    for clip, original in zip(shifted, x):
        offset = int((clip[0, 0] - original[0, 0]).item()) % 10
        assert torch.equal(clip, torch.roll(original, -offset, dims=-1))


def test_masks_zero_whole_bands_and_frames_within_their_width():
    torch.manual_seed(0)
    x = torch.ones(64, 20, 30)
    out, _ = Augment(kind="map", freq_masks=1, freq_mask_width=0.2, time_masks=1, time_mask_width=0.1)(x, torch.zeros(64))
    zero_bands = (out == 0).all(dim=2).sum(dim=1)
    zero_frames = (out == 0).all(dim=1).sum(dim=1)
    assert zero_bands.max() <= 4 and zero_frames.max() <= 3 and zero_bands.sum() > 0 and zero_frames.sum() > 0


def test_band_tilt_adds_a_level_and_a_slope_per_clip_within_its_strength():
    torch.manual_seed(0)
    x = torch.randn(32, 40, 50)
    out, _ = Augment(kind="map", band_tilt=0.5)(x, torch.zeros(32))
    offset = out - x
    assert torch.allclose(offset, offset[:, :, :1].expand_as(offset), atol=1e-5)  # the same in every frame
    per_band = offset[:, :, 0]
    steps = per_band.diff(dim=1)
    assert torch.allclose(steps, steps[:, :1].expand_as(steps), atol=1e-5)  # linear across the bands
    assert per_band.abs().max() <= 1.0 + 1e-5 and per_band.std(dim=0).min() > 0.05  # |level| + |slope| <= 2 x 0.5
    waveform = torch.randn(4, 1000)
    assert torch.equal(Augment(kind="waveform", band_tilt=0.5)(waveform, torch.zeros(4))[0], waveform)  # maps only


def test_stats_vectors_get_only_mixup():
    torch.manual_seed(0)
    x = torch.randn(8, 168)
    same, mixed = Augment(kind="vector", time_shift=True, time_masks=2, freq_masks=2)(x, torch.zeros(8))
    assert torch.equal(same, x) and mixed is None
    blended, mixed = Augment(kind="vector", mixup_alpha=0.4)(x, torch.zeros(8))
    torch.testing.assert_close(blended, mixed.lam * x + (1 - mixed.lam) * x[mixed.perm])


@pytest.mark.slow  # an in-process Lightning fit: the full suite runs it, `make test-fast` stays unit tests
def test_augmentation_is_off_at_eval_time():
    """Validation of a model trained with heavy augmentation equals that of the same weights without it."""
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(2), 40)
    table = ClipTable(
        features=rng.standard_normal((80, 16, 12)).astype(np.float32) + labels[:, None, None],
        labels=labels,
        track_index=np.arange(80) // 4,
        genres=["a", "b"],
        track_ids=[f"t{i}" for i in range(20)],
        track_labels=np.repeat(np.arange(2), 10),
    )
    dm = GenreDataModule.from_table(table, split={"mode": "segment"}, loader={"batch_size": 8, "minibatches_per_step": 2}, seed=0)
    dm.setup("fit")
    common = dict(
        input_shape=dm.input_shape,
        num_classes=2,
        class_names=["a", "b"],
        encoder=CNN,
        embedding_dim=8,
        recon_reduction="mean",
        dropout=0.0,
    )  # no dropout: a training step differs only by augmentation
    pl.seed_everything(0, verbose=False)
    augmented = DeepSoftmaxAutoencoder(augment=HEAVY, **common)
    trainer = quiet_trainer(2)
    trainer.fit(augmented, datamodule=dm)
    plain = DeepSoftmaxAutoencoder(**common)
    plain.load_state_dict(augmented.state_dict())
    scores = [
        pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False).validate(
            m, datamodule=dm, verbose=False
        )[0]
        for m in (augmented, plain, augmented)
    ]
    assert scores[0] == scores[1] == scores[2]
    batch = tuple(t[:16] for t in dm.tensors["train"])
    augmented.train()
    torch.manual_seed(1)
    train_loss = augmented._step(batch, "train")
    plain.train()
    assert torch.equal(plain._step(batch, "train"), plain._step(batch, "train"))
    assert not torch.equal(train_loss, plain._step(batch, "train"))  # training steps do see it


def crop_table(n_tracks: int = 8, clips: int = 4, frames: int = 10) -> ClipTable:
    """Clips whose every frame holds its time within the track (track * 1000 + frame): a crop shows where it came from."""
    time = np.arange(clips * frames, dtype=np.float32).reshape(clips, frames)
    features = np.stack([np.broadcast_to(t * 1000 + time[:, None, :], (clips, 3, frames)) for t in range(n_tracks)])
    labels = np.repeat(np.arange(2), n_tracks // 2 * clips)
    return ClipTable(
        features=features.reshape(-1, 3, frames).copy(),
        labels=labels,
        track_index=np.repeat(np.arange(n_tracks), clips),
        genres=["a", "b"],
        track_ids=[f"t{i}" for i in range(n_tracks)],
        track_labels=np.repeat(np.arange(2), n_tracks // 2),
    )


def test_random_crops_are_windows_of_one_track_and_off_at_eval_time():
    dm = GenreDataModule.from_table(
        crop_table(),
        split={"mode": "track", "sizes": [4, 2, 2]},
        loader={"batch_size": 4, "minibatches_per_step": 1, "random_crop": True},
        seed=0,
    )
    dm.setup("fit")
    offsets = set()
    for _ in range(5):
        for x, _, track in dm.train_dataloader():
            assert x.shape[1:] == (3, 10)
            for clip, t in zip(x, track):
                start = clip[0, 0].item() - t.item() * 1000  # every band the same window, of the clip's own track
                assert torch.equal(clip, clip[:1].expand(3, -1))
                assert 0 <= start <= 30 and torch.equal(clip[0], t * 1000 + start + torch.arange(10.0))
                offsets.add(int(start) % 10)
    assert len(offsets) > 5  # windows start anywhere, not only at the stored clips' starts
    for split in ("val", "test"):  # evaluation sees the stored clips, in order
        batches = list(dm.eval_dataloader(split))
        assert torch.equal(torch.cat([b[0] for b in batches]), dm.tensors[split][0])


def test_a_track_of_one_clip_is_cropped_to_itself():
    from genre_style.data.batching import RandomCrops

    x = torch.arange(4 * 5, dtype=torch.float32).view(4, 1, 5)
    crops = RandomCrops(x, torch.zeros(4, dtype=torch.long), torch.tensor([0, 0, 1, 2]))
    for _ in range(20):
        windows, _, _ = crops[torch.arange(4)]
        assert torch.equal(windows[2:], x[2:])  # tracks 1 and 2 hold one clip each: nothing else to cut from
        assert windows[0, 0, 0] in x[0:2].flatten()


def test_the_kind_comes_from_the_data_so_a_config_without_it_still_masks_frequencies(tmp_path):
    """`features=logmel +model.augment.freq_masks=2`: the front-end's kind reaches the model from the data module."""
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    from tests.conftest import REPO

    overrides = ["features=logmel", "+model.augment.freq_masks=2", "+model.augment.freq_mask_width=0.5", "logger=none"]
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=[f"paths.output_dir={tmp_path}", *overrides])
    rng = np.random.default_rng(0)
    table = ClipTable(
        features=rng.standard_normal((32, 16, 12)).astype(np.float32),  # 32 clips of 16 bands x 12 frames
        labels=np.repeat(np.arange(2), 16),
        track_index=np.arange(32) // 4,
        genres=["a", "b"],
        track_ids=[f"t{i}" for i in range(8)],
        track_labels=np.repeat(np.arange(2), 4),
    )
    dm = GenreDataModule.from_table(
        table, clips={"features": cfg.data.clips.features}, split={"mode": "segment"}, loader={"batch_size": 4}, seed=0
    )
    assert dm.input_kind == "map"
    model = instantiate(
        cfg.model, input_shape=dm.input_shape, input_kind=dm.input_kind, num_classes=2, class_names=list(table.genres)
    )
    assert model.augment.kind == "map"
    torch.manual_seed(0)
    x = torch.randn(16, *dm.input_shape) + 10.0  # no value is 0 before masking
    masked, _ = model.augment(x, torch.zeros(16, dtype=torch.long))
    whole_bands = (masked == 0).all(dim=2)  # [clips, bands]: a band zeroed over every frame
    assert whole_bands.any(dim=1).float().mean() > 0.5  # most clips lost at least one band


def test_random_crops_need_a_time_axis():
    with pytest.raises(UserError, match="random_crop"):
        GenreDataModule(source={"root": "x"}, clips={"features": "stats"}, loader={"random_crop": True})


def test_eval_clips_per_track_scores_each_songs_first_clips_and_trains_on_all():
    table = crop_table(n_tracks=8, clips=4)
    dm = GenreDataModule.from_table(
        table,
        clips={"clips_per_track": 4},
        split={"mode": "track", "sizes": [4, 2, 2], "eval_clips_per_track": 2},
        loader={"batch_size": 4},
        seed=0,
    )
    dm.setup("fit")
    position = lambda x: (x[:, 0, 0] % 1000) // 10  # noqa: E731  (crop_table: frame 0 of clip k holds k * 10)
    assert sorted(set(position(dm.tensors["train"][0]).tolist())) == [0, 1, 2, 3]
    for split in ("val", "test"):
        x, _, track = dm.tensors[split]
        assert position(x).tolist() == [0, 1] * 2 and len(set(track.tolist())) == 2
    with pytest.raises(UserError, match="eval_clips_per_track"):
        GenreDataModule(source={"root": "x"}, clips={"clips_per_track": 20}, split={"eval_clips_per_track": 33})
