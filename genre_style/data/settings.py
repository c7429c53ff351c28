"""The data settings by concern, as `conf/data/*.yaml` nests them: `source` (what to read), `clips` (how a track
becomes clips: `ClipSpec(**clips)`), `split` (which clips train, validate and test), `loader` (how clips reach the
model) and `store` (where their features live). Each rule is checked once, beside the settings it reads, when the
settings are built: the config checks build them from the config before anything heavy is imported, and
`GenreDataModule` builds them from its arguments (Python callers skip the config checks).

Light: the front-end registry and the split registry (numpy) only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Sequence

from omegaconf import OmegaConf

from genre_style.data import front_ends
from genre_style.data.audio import ClipSpec
from genre_style.data.splits import SplitMode, get_split_mode
from genre_style.errors import UserError

STORES = ("auto", "memory", "disk")  # data.store.mode: where the clips' features live

# The flat keys of earlier versions (data.<key>) and where each lives now: an old key gets one line naming its place.
MOVED = {
    "root": "source.root",
    "genres": "source.genres",
    "unlabelled": "source.unlabelled",
    "synthetic": "source.synthetic",
    **{key: f"clips.{key}" for key in ClipSpec.__dataclass_fields__},
    "split_sizes": "split.sizes",
    "split_lists": "split.lists",
    "balance": "split.balance",
    "eval_clips_per_track": "split.eval_clips_per_track",
    "batch_size": "loader.batch_size",
    "minibatches_per_step": "loader.minibatches_per_step",
    "eval_batch_size": "loader.eval_batch_size",
    "standardize": "loader.standardize",
    "random_crop": "loader.random_crop",
    "workers": "store.workers",
    "cache_dir": "store.cache_dir",
    "memory_budget_mb": "store.memory_budget_mb",
}
# Keys that kept their name but became a group: their old flat value (a string) moved one level down.
BECAME_GROUPS = {"source": "source.kind", "split": "split.mode", "store": "store.mode"}


def moved_key_error(key: str) -> UserError:
    """The one line an old flat `data.<key>` gets."""
    new = MOVED.get(key) or BECAME_GROUPS[key]
    return UserError(f"data.{key} has moved to data.{new}", f"write data.{new}=... (the data settings are grouped: docs/data.md)")


def check_typed_overrides(overrides: Sequence[str]) -> None:
    """Command-line overrides of an old flat data key (`data.root=...`, `+data.split=...`) fail in one line naming
    the new place, before Hydra composes the config (whose own error would be a paragraph about struct mode)."""
    for override in overrides:
        key, _, value = override.lstrip("+~").partition("=")
        parts = key.split(".")
        if len(parts) != 2 or parts[0] != "data":
            continue
        if parts[1] in MOVED or (parts[1] in BECAME_GROUPS and value and not value.startswith("{")):
            raise moved_key_error(parts[1])


@dataclass(frozen=True)
class SourceSettings:
    """What to read: `root` (a GTZAN-layout folder, a manifest, or what a registered source claims; `kind` names
    the source instead of letting the path decide), its `genres` (a list, or `all`), folders of `unlabelled` audio
    for the label-free terms, and `synthetic` (SyntheticSpec settings: write the built-in corpus at `root` first)."""

    root: str
    kind: str | None = None
    genres: str | Sequence[str] = ("classical", "jazz", "pop", "metal")
    unlabelled: str | Sequence[str] | None = None
    synthetic: Mapping[str, Any] | None = None

    @property
    def unlabelled_folders(self) -> list[str]:
        return [self.unlabelled] if isinstance(self.unlabelled, str) else [str(u) for u in self.unlabelled or []]


@dataclass(frozen=True)
class SplitSettings:
    """Which clips train, validate and test: a registered `mode` (data/splits.py), its `sizes` (fractions or counts)
    and `lists` (fault_filtered's track lists), whether genres are `balance`d first, and how many of each song's
    first clips val and test score (`eval_clips_per_track`, None: all)."""

    mode: str = "track"
    sizes: Sequence[float] = (0.75, 0.125, 0.125)
    lists: str | None = None
    balance: bool = True
    eval_clips_per_track: int | None = None

    @property
    def registered(self) -> SplitMode:
        """The registered split mode, or a UserError listing them."""
        return get_split_mode(self.mode)

    def __post_init__(self) -> None:
        self.registered  # noqa: B018 -- an unknown mode fails here, once


@dataclass(frozen=True)
class LoaderSettings:
    """How clips reach the model: per-feature `standardize` (fitted on train), training clips as `random_crop`s of
    their track, `batch_size`, `minibatches_per_step` (one optimiser step each, per Lightning batch) and the
    evaluation loaders' `eval_batch_size`."""

    batch_size: int = 64
    minibatches_per_step: int = 32
    eval_batch_size: int = 1024
    standardize: bool = False
    random_crop: bool = False


@dataclass(frozen=True)
class StoreSettings:
    """Where the clips' features live: `mode` memory, disk (numpy shards under `cache_dir`, read a batch at a time)
    or auto (disk past `memory_budget_mb`); `workers` preprocessing processes build them (None or 0: every core)."""

    mode: str = "auto"
    memory_budget_mb: float = 4096
    cache_dir: str | None = None
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.mode not in STORES:
            raise UserError(f"unknown data.store.mode={self.mode!r}", f"use one of {list(STORES)}")


@dataclass(frozen=True)
class DataSettings:
    """The five concerns together, and the rules that read two of them."""

    source: SourceSettings
    clips: ClipSpec = field(default_factory=ClipSpec)
    split: SplitSettings = field(default_factory=SplitSettings)
    loader: LoaderSettings = field(default_factory=LoaderSettings)
    store: StoreSettings = field(default_factory=StoreSettings)

    def __post_init__(self) -> None:
        scored, clips = self.split.eval_clips_per_track, self.clips.clips_per_track
        if scored is not None and not 0 < scored <= clips:
            raise UserError(
                f"data.split.eval_clips_per_track={scored} must be between 1 and data.clips.clips_per_track={clips}",
                "e.g. data.clips.clips_per_track=33 data.split.eval_clips_per_track=20 (train on whole songs, score 20 clips)",
            )
        if self.loader.random_crop and self.clips.front_end.kind == "vector":  # crops cut along time
            timed = front_ends.names("map") + front_ends.names("waveform")
            raise UserError(
                f"data.loader.random_crop=true needs features with a time axis; features={self.clips.features} has none",
                f"use features={'|'.join(timed)}, or data.loader.random_crop=false",
            )

    @classmethod
    def build(cls, **groups: Any) -> DataSettings:
        """From mappings (a config's groups, a caller's dicts) or settings objects; missing groups take defaults."""
        built: dict[str, Any] = {}
        for name, value in groups.items():
            if value is None:
                continue
            kind = GROUPS[name]
            built[name] = value if isinstance(value, kind) else kind(**_known(kind, name, value))
        return cls(**built)

    @classmethod
    def from_config(cls, data: Any) -> DataSettings:
        """A config's `data` node: an old flat key fails in one line."""
        if OmegaConf.is_config(data):
            data = OmegaConf.to_container(data, resolve=True)
        for key, value in data.items():
            if key in MOVED or (key in BECAME_GROUPS and not isinstance(value, Mapping) and value is not None):
                raise moved_key_error(str(key))
        if not (data.get("source") or {}).get("root"):
            raise UserError("data.source.root is not set", "give the data's folder or manifest: data.source.root=/path/to/gtzan")
        return cls.build(**{name: data.get(name) for name in CONCERNS})


# Each group of `data` and the class that holds it.
GROUPS: dict[str, type] = {
    "source": SourceSettings,
    "clips": ClipSpec,
    "split": SplitSettings,
    "loader": LoaderSettings,
    "store": StoreSettings,
}
CONCERNS = tuple(GROUPS)


def _known(kind: type, group: str, values: Any) -> dict[str, Any]:
    """`values` as keyword arguments of `kind`; an unknown key is one line listing the known ones."""
    if OmegaConf.is_config(values):
        values = OmegaConf.to_container(values, resolve=True)
    known = [f.name for f in fields(kind)]
    for key in values:
        if key not in known:
            raise UserError(f"data.{group}.{key} is not a data.{group} setting", f"use one of: {', '.join(known)}")
    return {str(k): v for k, v in values.items()}
