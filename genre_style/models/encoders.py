"""Encoders: the part of a model that turns one clip's features into its embedding.

An encoder is chosen in config (`encoder=mlp|logmel_cnn|sample_cnn`), independently of the objective
(`model=two_layer|autoencoder|dsae|...`). Each is built from the data's per-clip shape and the embedding
size the objective asks for, and says what the decoder of an autoencoding objective should mirror.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Sequence

import torch
from torch import nn

from genre_style.models.blocks import activation as make_activation
from genre_style.models.blocks import mlp

if TYPE_CHECKING:
    from genre_style.models.pretrained.cache import FrozenBackbone


class Encoder(nn.Module):
    """`[B, *input_shape] -> [B, output_dim]`."""

    input_shape: tuple[int, ...]
    output_dim: int
    reads: tuple[str, ...] = ("map", "waveform", "vector")  # the front-end kinds it can read (data/front_ends.py)
    front_end: str | None = None  # the one front-end it reads (a pretrained network's training input); None: any it reads
    backbone_lr_scale: float = 1.0  # the learning rate of `backbone_parameters` relative to the rest of the model's
    # models/pretrained/cache.py: `cache` (auto | true | false) says whether a frozen backbone's outputs may be cached;
    # `cached_input` is set while the model is fed those outputs instead of clips (forward then skips the backbone)
    cache: str | bool = "auto"
    cached_input: bool = False

    def decoder_hidden_sizes(self) -> list[int]:
        """Hidden layer sizes of the MLP decoder that mirrors this encoder (input side last)."""
        return [256]

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The trainable weights that learn at `backbone_lr_scale` times the learning rate (a pretrained backbone
        fine-tuned more gently than the heads on top of it); none for an encoder trained from scratch."""
        return []

    def frozen_backbone(self) -> FrozenBackbone | None:
        """The fixed bottom of this encoder, whose outputs a cache can hold once per clip (the heads then train on
        them: models/pretrained/cache.py); None where every part may learn (an encoder trained from scratch)."""
        return None

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        """A UserError for a bad setting of this encoder (its config node's values, as typed): the config check asks
        before any audio is read, so a typo fails at once rather than after preprocessing."""

    def checkpoint_settings(self) -> dict[str, Any]:
        """Settings a checkpoint's copy of this encoder's config overrides: the checkpoint holds every weight, so a
        pretrained encoder is rebuilt without fetching its pretrained ones."""
        return {}


def mlp_encoder(
    hidden_sizes: Sequence[int] = (256, 128), activation: str = "relu", dropout: float = 0.0, output_activation: bool = False
) -> dict:
    """The config node of an MLP encoder (what `encoder=mlp` gives a model), for code and tests."""
    return {
        "_target_": f"{__name__}.MLPEncoder",
        "hidden_sizes": list(hidden_sizes),
        "activation": activation,
        "dropout": dropout,
        "output_activation": output_activation,
    }


class MLPEncoder(Encoder):
    """The paper's encoder: the clip's features flattened, through fully connected layers.

    The last layer is linear (a bottleneck) unless `output_activation` (the two-layer net's tanh hidden layer).
    """

    def __init__(
        self,
        input_shape: Sequence[int],
        output_dim: int,
        hidden_sizes: Sequence[int] = (256, 128),
        activation: str = "relu",
        dropout: float = 0.0,
        output_activation: bool = False,
    ) -> None:
        super().__init__()
        self.input_shape, self.output_dim = tuple(input_shape), output_dim
        self.hidden_sizes = list(hidden_sizes)
        self.net = mlp(
            [math.prod(self.input_shape), *self.hidden_sizes, output_dim], activation, dropout, last_activation=output_activation
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1))

    def decoder_hidden_sizes(self) -> list[int]:
        return list(reversed(self.hidden_sizes))


def _conv2d_block(fan_in: int, fan_out: int) -> nn.Sequential:
    """Conv, batch norm, 2x2 max pool, ReLU. The ReLU comes after the pool: max and ReLU commute (ReLU is monotonic),
    so values and gradients are the same bits as ReLU-then-pool, on a quarter of the elements (measured: a log-mel
    CNN step ~10 % faster). The ReLU and pool hold no weights, so checkpoints of either order load in the other."""
    return nn.Sequential(
        nn.Conv2d(fan_in, fan_out, 3, padding=1, bias=False), nn.BatchNorm2d(fan_out), nn.MaxPool2d(2, ceil_mode=True), nn.ReLU()
    )


class LogMelCNN(Encoder):
    """A 2-D CNN over a (mel bands, frames) patch: 3x3 convolutions shared over time and frequency, then
    mean over frequency and mean + max over time, so a shift of the music in time barely moves the code.

    `band_mean_norm` subtracts each band's mean over the clip's frames first (cepstral mean normalisation, as
    speech recognisers undo a microphone): a recording chain's level and EQ no longer reach the code, the
    spectrum's changes in time (rhythm, onsets, melody) do."""

    reads = ("map",)

    def __init__(
        self,
        input_shape: Sequence[int],
        output_dim: int,
        channels: Sequence[int] = (16, 32, 64, 64),
        dropout: float = 0.3,
        band_mean_norm: bool = False,
    ) -> None:
        super().__init__()
        self.input_shape, self.output_dim = tuple(input_shape), output_dim
        self.band_mean_norm = band_mean_norm
        if len(self.input_shape) != 2:
            raise ValueError(f"LogMelCNN needs a (bands, frames) map per clip, got shape {self.input_shape}")
        sizes = [1, *channels]
        self.features = nn.Sequential(*(_conv2d_block(i, o) for i, o in zip(sizes[:-1], sizes[1:])))
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(2 * channels[-1], output_dim)

    def feature_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each conv block's output `[B, C_i, bands_i, frames_i]` for maps `x` `[B, bands, frames]`, first block first:
        what style transfer matches (an early block's activations for content, Gram matrices for style)."""
        h = (x - x.mean(dim=-1, keepdim=True) if self.band_mean_norm else x).unsqueeze(1)
        maps = []
        for block in self.features:
            h = block(h)
            maps.append(h)
        return maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.feature_maps(x)[-1].mean(dim=2)  # [B, C, frames']: frequency averaged out
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)
        return self.project(self.dropout(pooled))


class SampleCNN(Encoder):
    """A sample-level 1-D CNN over the waveform (Lee et al., 2017): a strided first convolution over a
    few samples, then blocks of a size-3 convolution and a pool by 3, global max + mean over time."""

    reads = ("waveform",)

    def __init__(
        self,
        input_shape: Sequence[int],
        output_dim: int,
        channels: Sequence[int] = (32, 32, 64, 64, 64, 128, 128),
        stride: int = 3,
        dropout: float = 0.3,
        activation: str = "relu",
    ) -> None:
        super().__init__()
        self.input_shape, self.output_dim = tuple(input_shape), output_dim
        if len(self.input_shape) != 1:
            raise ValueError(f"SampleCNN needs a waveform per clip, got shape {self.input_shape}")
        layers: list[nn.Module] = [
            nn.Conv1d(1, channels[0], stride, stride=stride, bias=False),
            nn.BatchNorm1d(channels[0]),
            make_activation(activation),
        ]
        for fan_in, fan_out in zip(channels[:-1], channels[1:]):
            layers += [
                nn.Conv1d(fan_in, fan_out, 3, padding=1, bias=False),
                nn.BatchNorm1d(fan_out),
                make_activation(activation),
                nn.MaxPool1d(3, ceil_mode=True),
            ]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(2 * channels[-1], output_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.features(x.unsqueeze(1))  # [B, C, steps]
        pooled = torch.cat([h.mean(dim=-1), h.amax(dim=-1)], dim=1)
        return self.project(self.dropout(pooled))


class MLPDecoder(nn.Module):
    """Embedding -> the encoder's input features (flattened through an MLP, then reshaped)."""

    def __init__(
        self,
        input_dim: int,
        output_shape: Sequence[int],
        hidden_sizes: Sequence[int],
        activation: str = "relu",
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.output_shape = tuple(output_shape)
        self.net = mlp([input_dim, *hidden_sizes, math.prod(self.output_shape)], activation, dropout)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(len(z), *self.output_shape)
