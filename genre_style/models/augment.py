"""Training-time augmentation of a batch of clips, on the device, each kind switchable in config.

Applied by the model in its training steps only: validation, test, prediction and `embed` see clips as they
are. With every kind off (the default, and the paper's experiment) it draws no random numbers, so runs
without it reproduce to the bit. What applies depends on the front-end's kind (data/front_ends.py), which the model
is given by the data: maps (logmel, mfcc) get time shifts and frequency/time masks; waveforms (waveform, raw_pool)
time shifts, time masks and gain; vectors without a time axis (stats) mixup only.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class Mixed:
    """Mixup's bookkeeping: the batch became `lam * x + (1 - lam) * x[perm]`, so the target is blended too."""

    perm: torch.Tensor
    lam: float


class Augment(nn.Module):
    """Random time shift (circular, per clip), SpecAugment-style frequency and time masks (maps only),
    gain (waveforms: a random level in dB; other inputs: none, they are standardised), a random level and
    spectral tilt (maps: `band_tilt`) and mixup."""

    def __init__(
        self,
        kind: str = "waveform",
        time_shift: bool = False,
        freq_masks: int = 0,
        freq_mask_width: float = 0.1,
        time_masks: int = 0,
        time_mask_width: float = 0.1,
        gain_db: float = 0.0,
        band_tilt: float = 0.0,
        mixup_alpha: float = 0.0,
    ) -> None:
        super().__init__()
        self.kind = kind  # front_ends.KINDS: map, waveform or vector
        self.time_shift, self.gain_db, self.mixup_alpha = time_shift, gain_db, mixup_alpha
        self.band_tilt = band_tilt
        self.freq_masks, self.freq_mask_width = freq_masks, freq_mask_width
        self.time_masks, self.time_mask_width = time_masks, time_mask_width

    @property
    def active(self) -> bool:
        return bool(self.time_shift or self.freq_masks or self.time_masks or self.gain_db or self.band_tilt or self.mixup_alpha)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, Mixed | None]:
        timed = self.kind in ("map", "waveform")
        if self.time_shift and timed:
            x = _roll_each(x, torch.randint(0, x.shape[-1], (len(x),), device=x.device))
        if self.kind == "map":  # [B, bands, frames]
            x = _mask(x, self.freq_masks, self.freq_mask_width, axis=1)
        if self.band_tilt and self.kind == "map":
            x = x + _random_tilt(x, self.band_tilt)
        if timed:
            x = _mask(x, self.time_masks, self.time_mask_width, axis=x.dim() - 1)
        if self.gain_db and self.kind == "waveform":
            db = (torch.rand(len(x), 1, device=x.device) * 2 - 1) * self.gain_db
            x = x * torch.pow(10.0, db / 20)
        mixed = None
        if self.mixup_alpha:
            lam = float(torch.distributions.Beta(self.mixup_alpha, self.mixup_alpha).sample())
            perm = torch.randperm(len(x), device=x.device)
            x = lam * x + (1 - lam) * x[perm]
            mixed = Mixed(perm, lam)
        return x, mixed


def _random_tilt(x: torch.Tensor, strength: float) -> torch.Tensor:
    """A per-clip offset over the bands of a `[B, bands, frames]` map: a level plus a linear slope from the lowest
    to the highest band, each uniform in +-`strength` (standardised units). In a log-spectrum that is another
    recording chain (level, microphone, mastering EQ): what differs most between artists, not between genres."""
    bands = torch.linspace(-1.0, 1.0, x.shape[1], device=x.device, dtype=x.dtype)
    level, slope = ((torch.rand(2, len(x), 1, device=x.device, dtype=x.dtype) * 2 - 1) * strength).unbind(0)
    return (level + slope * bands[None, :])[:, :, None]


def _roll_each(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Roll every clip along its last (time) axis by its own shift."""
    length = x.shape[-1]
    index = (torch.arange(length, device=x.device)[None, :] + shifts[:, None]) % length  # [B, T]
    index = index.view(len(x), *([1] * (x.dim() - 2)), length).expand_as(x)
    return x.gather(-1, index)


def _mask(x: torch.Tensor, count: int, width: float, axis: int) -> torch.Tensor:
    """Zero `count` random bands of up to `width` of `axis` in every clip (zero = the standardised mean)."""
    size = x.shape[axis]
    max_width = int(size * width)
    if not count or max_width < 1:
        return x
    positions = torch.arange(size, device=x.device)[None, :]
    keep = torch.ones(len(x), size, dtype=torch.bool, device=x.device)
    for _ in range(count):
        widths = torch.randint(0, max_width + 1, (len(x), 1), device=x.device)
        starts = (torch.rand(len(x), 1, device=x.device) * (size - widths + 1)).long()
        keep &= (positions < starts) | (positions >= starts + widths)
    shape = [len(x)] + [1] * (x.dim() - 1)
    shape[axis] = size
    return x * keep.view(shape).to(x.dtype)
