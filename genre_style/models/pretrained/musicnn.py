"""musicnn (Pons & Serra, 2019): pretrained music-tagging CNNs as an encoder (`encoder=musicnn`, `encoder=musicnn_vgg`).

The architectures of jordipons/musicnn's `models.py`, written in PyTorch, with the weights of the `musicnn` wheel's
TensorFlow-1 checkpoints read without TensorFlow (tf_checkpoint.py) and converted once into a torch state dict under
the cache folder. Four weight sets, each a 50-tag tagger of 3-s patches (187 frames of a 96-band log-mel at 16 kHz,
`front_ends.MUSICNN` in data/front_ends.py):

- `MSD_musicnn`, `MTT_musicnn`: the musically motivated CNN: vertical (timbral, 38 and 67 bands wide) and horizontal
  (temporal, 128/64/32 frames long) filters over the log-mel, each max-pooled over frequency; three 1-D convolutions
  over time with dense (residual) connections; mean and max over time; a 200-unit dense layer; 50 tags.
- `MSD_vgg`, `MTT_vgg`: a 5-block VGG of 3x3 convolutions (128 filters) and max pooling; 50 tags.

MSD: trained on the Million Song Dataset's audio previews with its 50 most frequent Last.fm tags; MTT: on
MagnaTagATune's 50 most frequent tags (docs/pretrained.md: licences, data, the reference check, speed).

TensorFlow-1 details kept: batch norm with epsilon 1e-3 (momentum 0.99: torch's 0.01), applied after the ReLU; 'same'
padding of even kernels puts the extra zero after (63 before, 64 after a 128-frame kernel); tensors flatten in
(time, frequency, channel) order, and the back-end's pooled vector interleaves each channel's max and mean.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genre_style.data import front_ends
from genre_style.errors import UserError
from genre_style.models.encoders import Encoder

if TYPE_CHECKING:
    from genre_style.models.pretrained.cache import FrozenBackbone

INSTALL = "pip install --no-deps musicnn==0.1.0"  # its metadata pins numpy<1.17: --no-deps (it runs on numpy 2)
N_MELS = 96
EPS, MOMENTUM = 1e-3, 0.01  # tf.compat.v1.layers.batch_normalization's defaults, in torch's convention
CONVERTER_VERSION = 1  # part of the converted weights' cache key: bump when the name mapping changes
FREEZE = ("all", "none", "top_k")


@dataclass(frozen=True)
class Architecture:
    """One musicnn model's shape: `kind` musicnn or vgg, and the sizes `models.define_model` gives it."""

    kind: str
    midend_filters: int = 64  # musicnn: filters of each mid-end convolution
    backend_units: int = 200  # musicnn: the penultimate dense layer
    vgg_filters: int = 128
    tags: int = 50


WEIGHTS: dict[str, Architecture] = {
    "MSD_musicnn": Architecture("musicnn"),
    "MTT_musicnn": Architecture("musicnn"),
    "MSD_vgg": Architecture("vgg"),
    "MTT_vgg": Architecture("vgg"),
}
# Each architecture's layers, bottom to top: a layer's output is the embedding the encoder starts from.
LAYERS = {
    "musicnn": ("mean_pool", "max_pool", "penultimate", "taggram"),
    "vgg": ("pool1", "pool2", "pool3", "pool4", "pool5", "taggram"),
}


def _batch_norm(kind: str, channels: int) -> nn.Module:
    cls = nn.BatchNorm2d if kind == "2d" else nn.BatchNorm1d
    return cls(channels, eps=EPS, momentum=MOMENTUM)


class _ConvReluNorm(nn.Module):
    """TF-1's conv layer with its activation, then batch norm: conv -> ReLU -> BN (the order musicnn trained with)."""

    def __init__(self, conv: nn.Conv1d | nn.Conv2d) -> None:
        super().__init__()
        self.conv = conv
        self.norm = _batch_norm("2d" if isinstance(conv, nn.Conv2d) else "1d", conv.out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.relu(self.conv(x)))


class _MusicnnFrontEnd(nn.Module):
    """Log-mel `[B, 1, T, 96]` -> `[B, 561, T]`: input batch norm, two timbral (7 frames x 38/67 bands) and three
    temporal (128/64/32 frames x 1 band) convolutions, each max-pooled over all its frequency positions."""

    def __init__(self, filters: float = 1.6) -> None:
        super().__init__()
        self.input_norm = _batch_norm("2d", 1)
        timbral = int(filters * 128)
        self.timbral = nn.ModuleList(
            _ConvReluNorm(nn.Conv2d(1, timbral, (7, int(share * N_MELS)))) for share in (0.4, 0.7)
        )  # 'valid' over frequency, time padded by 3 + 3 by hand (models.py: the same 'same' for 7 frames)
        self.temporal_frames = (128, 64, 32)
        self.temporal = nn.ModuleList(_ConvReluNorm(nn.Conv2d(1, int(filters * 32), (k, 1))) for k in self.temporal_frames)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """In training, as TensorFlow computes it: each conv's whole `[B, C, T, bands]` map through ReLU and batch norm
        (batch statistics), then the max over bands. Fixed (eval mode: inference, or a frozen front-end), the same
        values a clip at a time, pooled first (`_pooled`): those maps are 9 MB a clip, and a batch's worth spills out of
        the CPU's caches (measured: 2.5x the time per clip at batch 16 as at batch 1)."""
        if not self.training:
            return torch.cat([self._maps(clip, _pooled) for clip in x.split(1)])
        return self._maps(x, lambda block, z: block.norm(F.relu(z)).amax(dim=3))

    def _maps(self, x: torch.Tensor, pool: Callable[[_ConvReluNorm, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        x = self.input_norm(x)
        padded = F.pad(x, (0, 0, 3, 3))
        maps = [pool(block, block.conv(padded)) for block in _typed(self.timbral)]
        for frames, block in zip(self.temporal_frames, _typed(self.temporal)):
            maps.append(pool(block, block.conv(F.pad(x, (0, 0, (frames - 1) // 2, frames // 2)))))  # TF 'same': odd zero after
        return torch.cat(maps, dim=1)


def _typed(blocks: nn.ModuleList) -> list[_ConvReluNorm]:
    return [block for block in blocks if isinstance(block, _ConvReluNorm)]


def _pooled(block: _ConvReluNorm, z: torch.Tensor) -> torch.Tensor:
    """`max over bands of BN(ReLU(z))` for a fixed batch norm, from `z`'s max and min over bands `[B, C, T, bands]`:
    ReLU is non-decreasing and a fixed batch norm is monotonic per channel (increasing where its scale is positive,
    decreasing where negative), so the max is reached at z's max, or at its min: the same values, on a 1/bands-th
    of the elements."""
    norm = block.norm
    assert isinstance(norm, nn.BatchNorm2d) and norm.running_var is not None and norm.running_mean is not None
    rising = (norm.weight >= 0).view(1, -1, 1)
    extreme = torch.where(rising, z.amax(dim=3), z.amin(dim=3))
    return F.batch_norm(F.relu(extreme), norm.running_mean, norm.running_var, norm.weight, norm.bias, False, 0.0, norm.eps)


class _MusicnnMidEnd(nn.Module):
    """One mid-end layer: a 7-frame 1-D convolution over time of all channels (TF: a 7 x channels 2-D kernel over the
    time-by-channel map), ReLU, batch norm; `residual` adds its input (layers 2 and 3)."""

    def __init__(self, fan_in: int, filters: int, residual: bool) -> None:
        super().__init__()
        self.layer = _ConvReluNorm(nn.Conv1d(fan_in, filters, 7, padding=3))
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.layer(x)
        return out + x if self.residual else out


class _MusicnnBackEnd(nn.Module):
    """`[B, C, T]` -> the penultimate layer `[B, units]`: max and mean over time, interleaved per channel as TF
    flattens `concat([max, mean], 2)`; batch norm, dropout 0.5, dense + ReLU, batch norm."""

    def __init__(self, channels: int, units: int) -> None:
        super().__init__()
        self.pool_norm = _batch_norm("1d", 2 * channels)
        self.dropout = nn.Dropout(0.5)
        self.dense = nn.Linear(2 * channels, units)
        self.norm = _batch_norm("1d", units)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.stack([x.amax(dim=2), x.mean(dim=2)], dim=2).flatten(1)
        return self.norm(F.relu(self.dense(self.dropout(self.pool_norm(pooled)))))


class _Tags(nn.Module):
    """The tagger's output: dropout, dense, sigmoid (musicnn's `taggram`, each tag's probability)."""

    def __init__(self, fan_in: int, tags: int, dropout: float) -> None:
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.dense = nn.Linear(fan_in, tags)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.dense(self.dropout(x)))


class MusicnnNet(nn.Module):
    """musicnn up to `layer`: log-mel patches `[B, T, 96]` (frames, bands: musicnn's order) -> `[B, layer size]`.

    Only the blocks the layer needs are built (a layer below `penultimate` has no dense layers), so an unused block
    neither loads nor trains. `blocks` lists them bottom to top: what `freeze=top_k` counts."""

    def __init__(self, layer: str = "penultimate", midend_filters: int = 64, backend_units: int = 200, tags: int = 50) -> None:
        super().__init__()
        self.layer = layer
        depth = LAYERS["musicnn"].index(layer)
        self.frontend = _MusicnnFrontEnd()
        channels = 2 * int(1.6 * 128) + 3 * int(1.6 * 32)  # 561
        self.midend = nn.ModuleList(
            _MusicnnMidEnd(channels if i == 0 else midend_filters, midend_filters, residual=i > 0) for i in range(3)
        )
        self.pooled_dim = channels + 3 * midend_filters  # 753: front-end and every mid-end layer, densely connected
        self.backend = _MusicnnBackEnd(self.pooled_dim, backend_units) if depth >= 2 else None
        self.tags = _Tags(backend_units, tags, 0.5) if depth >= 3 else None
        self.output_dim = {0: self.pooled_dim, 1: self.pooled_dim, 2: backend_units, 3: tags}[depth]
        self.blocks: list[nn.Module] = [self.frontend, *self.midend, *(b for b in (self.backend, self.tags) if b is not None)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        front = self.frontend(x.unsqueeze(1))
        maps, h = [front], front
        for layer in self.midend:
            h = layer(h)
            maps.append(h)
        features = torch.cat(maps, dim=1)  # [B, 753, T]
        if self.layer == "mean_pool":
            return features.mean(dim=2)
        if self.layer == "max_pool":
            return features.amax(dim=2)
        assert self.backend is not None
        penultimate = self.backend(features)
        return penultimate if self.tags is None else self.tags(penultimate)


class _MaxPool(nn.Module):
    """Max pooling with 'valid' windows (TF's default; nn.MaxPool2d's floor mode), as the max of the window's strided
    slices: the same values, without torch's CPU kernel for a (4, 1) window with stride 2, which took 20 ms of the
    VGG's ~60 per clip (measured, torch 2.13)."""

    def __init__(self, kernel: tuple[int, int], stride: tuple[int, int]) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel, self.stride
        rows, cols = (x.shape[2] - kh) // sh + 1, (x.shape[3] - kw) // sw + 1
        out = x[:, :, : sh * (rows - 1) + 1 : sh, : sw * (cols - 1) + 1 : sw]
        for i in range(kh):
            for j in range(kw):
                if i or j:
                    out = torch.maximum(out, x[:, :, i : i + sh * (rows - 1) + 1 : sh, j : j + sw * (cols - 1) + 1 : sw])
        return out


class _VGGBlock(nn.Module):
    """(dropout 0.25 from the 2nd block,) 3x3 'same' conv, ReLU, batch norm, max pool; the 1st block normalises the
    input first and pools (4, 1) with stride 2, the 5th pools (4, 4) with stride 4, the others (2, 2)."""

    def __init__(self, index: int, fan_in: int, filters: int) -> None:
        super().__init__()
        self.input_norm = _batch_norm("2d", 1) if index == 0 else None
        self.dropout = nn.Dropout(0.25) if index > 0 else None
        self.layer = _ConvReluNorm(nn.Conv2d(fan_in, filters, 3, padding=1))
        pool = {0: ((4, 1), (2, 2)), 4: ((4, 4), (4, 4))}.get(index, ((2, 2), (2, 2)))
        self.pool = _MaxPool(*pool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.input_norm is not None:
            x = self.input_norm(x)
        if self.dropout is not None:
            x = self.dropout(x)
        return self.pool(self.layer(x))


class VGGNet(nn.Module):
    """musicnn's VGG up to `layer`: `[B, T, 96]` -> `poolN` flattened in TF's (time, frequency, channel) order (for
    a 187-frame patch pool5 is 2 x 1 x 128 = 256 values, what the tagger reads), or the `taggram` (50)."""

    def __init__(self, layer: str = "pool5", frames: int = 187, filters: int = 128, tags: int = 50) -> None:
        super().__init__()
        self.layer = layer
        depth = LAYERS["vgg"].index(layer)
        convs = [_VGGBlock(i, 1 if i == 0 else filters, filters) for i in range(min(depth + 1, 5))]
        self.convs = nn.ModuleList(convs)
        with torch.no_grad():  # the flattened size of the deepest pool for this patch length
            probe = torch.zeros(1, 1, frames, N_MELS)
            for block in convs:
                probe = block.pool(probe)
        flat = filters * probe.numel()
        if flat == 0 or (layer == "taggram" and probe.numel() != 2):
            raise UserError(
                f"musicnn's VGG up to {layer} cannot read {frames}-frame patches"
                + (" (its tagger reads 2 x 1 pooled positions: 187-frame patches)" if flat else ""),
                "data.clips.segment_samples=47616 (musicnn's 187-frame, 3-s patch)",
            )
        self.tags = _Tags(flat, tags, 0.5) if layer == "taggram" else None
        self.output_dim = tags if self.tags is not None else flat
        self.blocks: list[nn.Module] = [*self.convs, *([self.tags] if self.tags is not None else [])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x.unsqueeze(1)
        blocks = list(self.convs)
        fixed = next((i for i, block in enumerate(blocks) if block.training), len(blocks))
        if fixed:  # the fixed (eval-mode) bottom blocks a clip at a time: their maps stay in the CPU's caches
            h = torch.cat([_through(blocks[:fixed], clip) for clip in h.split(1)])
        h = _through(blocks[fixed:], h)
        flat = h.permute(0, 2, 3, 1).flatten(1)  # NHWC order, as tf.layers.flatten
        return flat if self.tags is None else self.tags(flat)


def block_count(weights: str, layer: str) -> int:
    """The blocks of `weights`' network up to `layer` (what `freeze=top_k` counts): musicnn's front-end, its three
    mid-end layers, the dense back-end (`penultimate`), the tags; the VGG's five conv blocks, the tags."""
    depth = LAYERS[WEIGHTS[weights].kind].index(layer)
    if WEIGHTS[weights].kind == "musicnn":
        return 4 + max(depth - 1, 0)
    return min(depth + 1, 5) + (layer == "taggram")


def _through(blocks: list[nn.Module], x: torch.Tensor) -> torch.Tensor:
    for block in blocks:
        x = block(x)
    return x


# --- the weights: TF-1 names -> this module's names, converted once and cached --------------------------------


def _tf_names(kind: str) -> list[tuple[str, str]]:
    """(TF variable scope, torch module path) for every layer with weights, in models.py's creation order (TF-1
    numbers unnamed layers by creation: conv2d, conv2d_1, ..., batch_normalization_1, ...)."""
    if kind == "vgg":
        pairs = [("batch_normalization", "convs.0.input_norm")]
        for i in range(5):
            pairs += [(f"{i + 1}CNN", f"convs.{i}.layer.conv"), (f"batch_normalization_{i + 1}", f"convs.{i}.layer.norm")]
        return pairs + [("dense", "tags.dense")]
    convs = ["frontend.timbral.0", "frontend.timbral.1", "frontend.temporal.0", "frontend.temporal.1", "frontend.temporal.2"]
    convs += [f"midend.{i}.layer" for i in range(3)]
    pairs = [("batch_normalization", "frontend.input_norm")]
    for i, path in enumerate(convs):
        pairs += [("conv2d" + (f"_{i}" if i else ""), f"{path}.conv"), (f"batch_normalization_{i + 1}", f"{path}.norm")]
    return pairs + [
        ("batch_normalization_9", "backend.pool_norm"),
        ("dense", "backend.dense"),
        ("batch_normalization_10", "backend.norm"),
        ("dense_1", "tags.dense"),
    ]


def convert(tensors: dict[str, Any], kind: str) -> dict[str, torch.Tensor]:
    """A TF-1 musicnn checkpoint's variables (name -> numpy array) as the state dict of the full MusicnnNet/VGGNet
    (every block, up to `taggram`). Kernels: conv `[h, w, in, out] -> [out, in, h, w]` (the mid-end's
    `[7, channels, 1, out]` -> Conv1d `[out, channels, 7]`), dense `[in, out] -> [out, in]`."""
    state: dict[str, torch.Tensor] = {}
    for scope, path in _tf_names(kind):
        if f"{scope}/moving_mean" in tensors:
            for tf_name, name in (("gamma", "weight"), ("beta", "bias"), ("moving_mean", "running_mean")):
                state[f"{path}.{name}"] = torch.from_numpy(tensors[f"{scope}/{tf_name}"].copy())
            state[f"{path}.running_var"] = torch.from_numpy(tensors[f"{scope}/moving_variance"].copy())
            state[f"{path}.num_batches_tracked"] = torch.tensor(0)
            continue
        kernel = torch.from_numpy(tensors[f"{scope}/kernel"].copy())
        if kernel.dim() == 2:
            kernel = kernel.T
        elif path.startswith("midend"):
            kernel = kernel[:, :, 0, :].permute(2, 1, 0)
        else:
            kernel = kernel.permute(3, 2, 0, 1)
        state[f"{path}.weight"] = kernel.contiguous()
        state[f"{path}.bias"] = torch.from_numpy(tensors[f"{scope}/bias"].copy())
    return state


def checkpoint_prefix(weights: str) -> Path:
    """Where the installed musicnn package keeps `weights`' TF checkpoint (`<package>/<weights>/` + `.index`), found
    without importing it (musicnn's modules import TensorFlow); a UserError naming the install command if missing."""
    spec = importlib.util.find_spec("musicnn")
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"encoder weights={weights} come from the musicnn package, which is not installed", INSTALL)
    folder = Path(next(iter(spec.submodule_search_locations))) / weights
    if not (folder / ".index").is_file():
        raise UserError(f"the musicnn package at {folder.parent} has no {weights} checkpoint", f"reinstall it: {INSTALL}")
    return folder


def converted_weights(weights: str, cache_dir: str | Path | None) -> dict[str, torch.Tensor]:
    """`weights`' full state dict, converted from the musicnn package's TF checkpoint once and then read from
    `<cache_dir>/pretrained/musicnn-<weights>-<digest>.pt`; the digest hashes the checkpoint's files and the
    converter's version, so other weights under the same name never meet a stale cache. Saved as a plain state dict,
    read with `weights_only=True`."""
    from genre_style.models.pretrained.tf_checkpoint import read_checkpoint

    folder = checkpoint_prefix(weights)
    digest = hashlib.sha256(f"{CONVERTER_VERSION}".encode())
    for name in sorted(p.name for p in folder.iterdir() if p.name.startswith((".index", ".data-"))):
        digest.update(name.encode() + (folder / name).read_bytes())
    cached = Path(cache_dir) / "pretrained" / f"musicnn-{weights}-{digest.hexdigest()[:16]}.pt" if cache_dir else None
    if cached is not None and cached.is_file():
        return torch.load(cached, map_location="cpu", weights_only=True)
    state = convert(read_checkpoint(f"{folder}/"), WEIGHTS[weights].kind)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        handle, tmp = tempfile.mkstemp(dir=cached.parent, suffix=".tmp")  # atomic: a parallel run reads all or nothing
        os.close(handle)
        torch.save(state, tmp)
        os.replace(tmp, cached)
    return state


# --- the encoder -----------------------------------------------------------------------------------------------


class MusicnnEncoder(Encoder):
    """A pretrained musicnn network up to `layer`, then a linear projection to the objective's embedding size.

    Reads the `musicnn` front-end's maps `[B, 96 bands, frames]` (16 kHz log-mel, log10(1 + 10000 x)). `freeze`
    decides what trains: `all` (default: the backbone is a fixed feature extractor; its batch norms keep their
    running statistics and its dropout is off, in training too), `top_k` (the `top_k` blocks nearest `layer`
    fine-tune, the rest stays fixed), `none` (everything fine-tunes). `backbone_lr_scale` multiplies the
    optimiser's learning rate for the backbone's trainable weights (models/base.py: `parameter_groups`): the heads
    learn at `lr`. `project=false` hands the layer itself over (`model.embedding_dim` must then be its size).
    `pretrained=false` builds the architecture with random weights: what a trained model's checkpoint is rebuilt
    with before its own weights load, so reading one needs no musicnn package."""

    reads = ("map",)
    front_end = front_ends.MUSICNN

    def __init__(
        self,
        input_shape: Sequence[int],
        output_dim: int,
        weights: str = "MSD_musicnn",
        layer: str = "penultimate",
        freeze: str = "all",
        top_k: int = 1,
        backbone_lr_scale: float = 0.1,
        project: bool = True,
        dropout: float = 0.0,
        pretrained: bool = True,
        cache_dir: str | None = None,
        cache: str | bool = "auto",
    ) -> None:
        super().__init__()
        self.input_shape, self.output_dim = tuple(input_shape), output_dim
        self.check_settings(
            {"weights": weights, "layer": layer, "freeze": freeze, "top_k": top_k, "pretrained": False, "cache": cache}
        )
        from genre_style.models.pretrained.cache import checked_setting

        self.cache = checked_setting(cache)
        if len(self.input_shape) != 2 or self.input_shape[0] != N_MELS:
            raise UserError(
                f"musicnn reads (96 bands, frames) log-mel maps, got clips of shape {self.input_shape}",
                f"use features={front_ends.MUSICNN}",
            )
        arch = WEIGHTS[weights]
        self.weights, self.layer, self.freeze, self.top_k = weights, layer, freeze, int(top_k)
        self.backbone_lr_scale = float(backbone_lr_scale)
        # acceleration.channels_last_pays: musicnn's 1-channel, band-wide kernels ran ~1.5x slower per clip in
        # channels-last, the VGG no faster (torch 2.13, one thread)
        self.channels_last = False
        self.backbone: MusicnnNet | VGGNet = (
            MusicnnNet(layer, arch.midend_filters, arch.backend_units, arch.tags)
            if arch.kind == "musicnn"
            else VGGNet(layer, self.input_shape[1], arch.vgg_filters, arch.tags)
        )
        if pretrained:
            state = converted_weights(weights, cache_dir)
            self.backbone.load_state_dict({k: v for k, v in state.items() if k in self.backbone.state_dict()})
        blocks = self.backbone.blocks
        trainable = {"all": 0, "none": len(blocks), "top_k": self.top_k}[freeze]
        self.frozen: list[nn.Module] = blocks[: len(blocks) - trainable]
        for block in self.frozen:
            block.requires_grad_(False)
        if self.frozen:  # Lightning warns of modules in eval mode when training starts: these are, on purpose
            warnings.filterwarnings("ignore", message=r".*module\(s\) in eval mode at the start of training")
        backbone_dim = self.backbone.output_dim
        if not project and output_dim != backbone_dim:
            raise UserError(
                f"project=false hands over {weights}'s {layer} ({backbone_dim} values), but the model asks for {output_dim}",
                f"set model.embedding_dim={backbone_dim}, or keep the projection (project=true)",
            )
        self.dropout = nn.Dropout(dropout)
        self.project = nn.Linear(backbone_dim, output_dim) if project else nn.Identity()
        self.train()

    @classmethod
    def check_settings(cls, settings: dict[str, Any]) -> None:
        """A UserError naming the first bad setting among `weights`, `layer`, `freeze`, `top_k`, and (`pretrained`,
        the default) a missing musicnn package: asked by the config check, before any audio is read."""
        weights, layer, freeze = (
            settings.get("weights", "MSD_musicnn"),
            settings.get("layer", "penultimate"),
            settings.get("freeze", "all"),
        )
        if weights not in WEIGHTS:
            raise UserError(f"unknown musicnn weights={weights}", f"use one of {', '.join(WEIGHTS)}")
        layers = LAYERS[WEIGHTS[weights].kind]
        if layer not in layers:
            raise UserError(f"{weights} has no layer={layer}", f"use one of {', '.join(layers)}")
        if freeze not in FREEZE:
            raise UserError(f"unknown freeze={freeze}", "use all (a fixed backbone), none (fine-tune it all) or top_k")
        blocks = block_count(weights, layer)
        top_k = settings.get("top_k", 1)
        if freeze == "top_k" and not (isinstance(top_k, int) and 1 <= top_k <= blocks):
            raise UserError(
                f"top_k={top_k} is not between 1 and the {blocks} blocks of {weights} up to layer={layer}",
                f"e.g. top_k=1, or freeze=none to fine-tune all {blocks}",
            )
        from genre_style.models.pretrained.cache import checked_setting

        checked_setting(settings.get("cache", "auto"), freeze)
        if settings.get("pretrained", True):
            checkpoint_prefix(weights)

    def train(self, mode: bool = True) -> MusicnnEncoder:
        """As nn.Module.train, but frozen blocks stay in eval mode: their batch norms use (and keep) the pretrained
        running statistics and their dropout stays off, so a frozen backbone is the same function in every step."""
        super().train(mode)
        for block in self.frozen:
            block.eval()
        return self

    def backbone_parameters(self) -> list[nn.Parameter]:
        return [p for p in self.backbone.parameters() if p.requires_grad]

    def checkpoint_settings(self) -> dict[str, Any]:
        return {"pretrained": False}  # the checkpoint holds every weight: rebuilding it needs no musicnn package

    def frozen_backbone(self) -> FrozenBackbone | None:
        """With `freeze: all`, the network up to `layer`: its outputs can be computed once per clip and cached."""
        if self.freeze != "all":
            return None
        from genre_style.models.pretrained.cache import FrozenBackbone

        return FrozenBackbone(self.backbone, self._backbone, f"musicnn {self.weights} {self.layer}", self.backbone.output_dim)

    def _backbone(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x.transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Log-mel maps `[B, 96, frames]`, or (`cached_input`) the frozen backbone's outputs `[B, layer size]`."""
        return self.project(self.dropout(x if self.cached_input else self._backbone(x)))
