"""The LightningDataModule: corpus (data/corpus.py: a GTZAN-layout folder, a manifest, any registered source) ->
cached clip table -> balanced split (data/splits.py's registry) -> in-memory tensors.

Batches are sliced from tensors already in memory (a sampler yielding one index tensor or slice per batch
to an `InMemoryClips` dataset) rather than collated sample by sample: the data set is small, the model is
small, and per-sample Python overhead would dominate an epoch.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader

from genre_style.data.audio import ClipSpec
from genre_style.data.batching import InMemoryClips, RandomCrops, SplitIntoMinibatches, TensorBatches
from genre_style.data.clip_store import ClipStore, StoreClips, StoreRows, build_or_resume, store_folder
from genre_style.data.clip_table import ClipTable
from genre_style.data.corpus import Corpus, parse_genres, resolve_corpus
from genre_style.data.gtzan import UNLABELLED, discover_unlabelled
from genre_style.data.preprocess import cache_key, load_or_build
from genre_style.data.preprocessing import Preprocessing, standardize, standardizer
from genre_style.data.settings import DataSettings, LoaderSettings, SourceSettings, SplitSettings, StoreSettings
from genre_style.data.splits import SPLIT_NAMES, SplitInput, balance_classes
from genre_style.data.synthetic import SyntheticSpec, generate_corpus
from genre_style.errors import UserError

log = logging.getLogger(__name__)
UNLABELLED_LABEL = -1  # the label of a clip without a genre (`data.source.unlabelled`): losses and metrics that need one skip it


def clip_positions(track_index: np.ndarray) -> np.ndarray:
    """Each clip's place in its track (0 = the track's first clip): a table keeps a track's clips together, in order."""
    starts = np.flatnonzero(np.r_[True, track_index[1:] != track_index[:-1]])
    lengths = np.diff(np.r_[starts, len(track_index)])
    return np.arange(len(track_index)) - np.repeat(starts, lengths)


class GenreDataModule(pl.LightningDataModule):
    """GTZAN-layout audio (or the built-in synthetic corpus) as `(x, y, track_index)` batches."""

    def __init__(
        self,
        source: Mapping[str, Any] | SourceSettings,
        clips: Mapping[str, Any] | ClipSpec | None = None,
        split: Mapping[str, Any] | SplitSettings | None = None,
        loader: Mapping[str, Any] | LoaderSettings | None = None,
        store: Mapping[str, Any] | StoreSettings | None = None,
        seed: int = 42,
        progress: bool = True,
    ) -> None:
        """One argument per concern of `data` (conf/data/gtzan.yaml; data/settings.py checks each rule once): mappings
        as the config gives them, or the settings objects."""
        super().__init__()
        self.settings = DataSettings.build(source=source, clips=clips, split=split, loader=loader, store=store)
        source_, split_, loader_, store_ = self.settings.source, self.settings.split, self.settings.loader, self.settings.store
        self.split_mode = split_.registered
        self.root = Path(source_.root)
        self.source = source_.kind  # a registered kind of source by name (data/corpus.py); None: the one that claims root
        self._corpus: Corpus | None = None
        genres = source_.genres
        self.requested_genres = list(genres) if not isinstance(genres, str) else genres
        self.store_mode = store_.mode
        self.spec = self.settings.clips
        self.eval_clips_per_track = split_.eval_clips_per_track
        self.standardize = loader_.standardize
        self.balance = split_.balance
        self.random_crop = loader_.random_crop
        self.split = split_.mode
        self.split_sizes = list(split_.sizes)
        self.split_lists = split_.lists
        self.unlabelled = source_.unlabelled_folders
        self.unlabelled_tensors: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None
        self.batch_size = loader_.batch_size
        self.minibatches_per_step = loader_.minibatches_per_step
        self.eval_batch_size = loader_.eval_batch_size
        self.workers = store_.workers
        self.cache_dir = store_.cache_dir
        self.memory_budget_mb = store_.memory_budget_mb
        self.store: ClipStore | None = None  # the clips on disk (data.store.mode=disk), else None: they are in self.table
        self.seed = seed
        synthetic = source_.synthetic
        self.synthetic = SyntheticSpec(**{"genres": tuple(self._genre_list()), **synthetic}) if synthetic is not None else None
        self.progress = progress
        self.table: ClipTable | None = None
        self._feature_shape: tuple[int, ...] | None = None
        self._train_sampler: TensorBatches | None = None  # the training order, saved in resume checkpoints
        self._train_order: torch.Tensor | None = None  # a checkpoint's training order, for the next train loader
        self._train_crops: RandomCrops | None = None  # its crop offsets' generator, saved beside the order
        self._crop_state: torch.Tensor | None = None
        self.cache_hit: bool | None = None
        self.cache_key = "in-memory"  # the clip cache's file name: the same audio, front-end and genres share it
        self.indices: dict[str, np.ndarray] = {}
        self.tensors: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # in memory
        self.stored: dict[str, StoreClips] = {}  # or on disk: each split's clips read a batch at a time
        self.mean: np.ndarray | None = None
        self.std: np.ndarray | None = None
        self.served: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}  # serve_features

    @classmethod
    def from_table(cls, table: ClipTable, **groups: Any) -> GenreDataModule:
        """A data module over clips already in memory (benchmarks, tests, notebooks): no files are read. `groups` are
        the constructor's (`split`, `loader`, `seed`, ...); the source is the table."""
        module = cls(source={"root": "<in-memory>", "genres": list(table.genres)}, **groups)
        module.table = table
        module._feature_shape = tuple(table.features.shape[1:])  # clips as given: vectors, or already maps
        return module

    def _genre_list(self) -> list[str]:
        names = parse_genres(self.requested_genres)
        return list(SyntheticSpec().genres) if names is None else names

    def corpus(self) -> Corpus:
        """`data.source.root` resolved once: its kind of source, the chosen genres, their tracks (with split and artist);
        a split mode's needs (`SplitMode.reads`) are checked here, before any audio is read."""
        if self._corpus is None:
            corpus = resolve_corpus(self.root, self.requested_genres, self.source)
            for field in self.split_mode.reads:
                corpus.require(field, f"data.split.mode={self.split}")
            self._corpus = corpus
        return self._corpus

    # --- Lightning hooks --------------------------------------------------------------------------

    def prepare_data(self) -> None:
        """Write the synthetic corpus if asked for, then build or reuse the clip cache (once per machine)."""
        if self.table is not None:
            return
        if self.synthetic is not None:
            generate_corpus(self.root, self.synthetic, progress=self.progress)
        self._load_table()

    def setup(self, stage: str | None = None) -> None:
        if self.tensors:
            return
        table = self._load_table()
        # A published split is used as published: no clips are dropped to balance it.
        balance = self.balance and not self.split_mode.given
        keep = balance_classes(table.labels, self.seed) if balance else np.arange(len(table))
        local = self.split_mode.split(SplitInput(table, keep, self.split_sizes, self.seed, self.split_lists))
        self.indices = {name: keep[idx] for name, idx in local.items()}
        if self.eval_clips_per_track is not None:  # val and test score each song's first clips only
            first = clip_positions(table.track_index) < self.eval_clips_per_track
            self.indices.update({name: self.indices[name][first[self.indices[name]]] for name in ("val", "test")})
        if self.random_crop:  # crops join a clip to its neighbour: keep the training clips in track order
            self.indices["train"] = np.sort(self.indices["train"])
        if self.store is not None:
            self._setup_stored(self.store)
            return
        features = table.features.reshape(len(table), *self.input_shape)
        if self.standardize:  # statistics from the train split only: nothing leaks from val/test
            self.mean, self.std = standardizer(features[self.indices["train"]])
        for name in SPLIT_NAMES:
            idx = self.indices[name]
            x = standardize(features[idx], self.mean, self.std)  # a copy, standardised in place as inference does it
            self.tensors[name] = (
                torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)),
                torch.as_tensor(table.labels[idx]),
                torch.as_tensor(table.track_index[idx]),
            )
        sizes = ", ".join(f"{name} {len(self.indices[name])}" for name in SPLIT_NAMES)
        log.info("clips per split (%s split): %s", self.split, sizes)
        if self.unlabelled:
            self.unlabelled_tensors = self._unlabelled_clips(len(table.track_ids))

    def _setup_stored(self, store: ClipStore) -> None:
        """The splits as views of the disk store: nothing but labels and indices in memory."""
        if self.random_crop or self.unlabelled:
            raise UserError(
                "data.store.mode=disk serves stored clips only: data.loader.random_crop and data.source.unlabelled need the clips in memory",
                "use data.store.mode=memory (if they fit), or data.loader.random_crop=false data.source.unlabelled=null",
            )
        if self.standardize:  # statistics from the train split only, read in chunks
            self.mean, self.std = standardizer(StoreRows(store, self.indices["train"]))
        self.stored = {name: StoreClips(store, self.indices[name], self.mean, self.std) for name in SPLIT_NAMES}
        log.info(
            "clips per split (%s split, on disk at %s): %s",
            self.split, store.folder, ", ".join(f"{name} {len(self.indices[name])}" for name in SPLIT_NAMES),
        )  # fmt: skip

    def _unlabelled_clips(self, first_song: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """`data.source.unlabelled`'s clips for the training loader only: label `UNLABELLED_LABEL` (the cross-entropy and
        accuracy skip them), song ids after the labelled ones (the contrastive term's positives), standardised with
        the labelled training split's statistics (so the figures on labelled data are unchanged in kind)."""
        tracks = discover_unlabelled(self.unlabelled)
        table, _, _ = load_or_build(tracks, [UNLABELLED], self.spec, self.cache_dir, self.workers, self.progress)
        x = standardize(table.features.reshape(len(table), *self.input_shape), self.mean, self.std)
        log.info("unlabelled: %d clips of %d songs feed the label-free terms only", len(table), len(table.track_ids))
        return (
            torch.as_tensor(np.ascontiguousarray(x, dtype=np.float32)),
            torch.full((len(table),), UNLABELLED_LABEL, dtype=torch.int64),
            torch.as_tensor(table.track_index + first_song),
        )

    def training_tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """What the training loader draws from: the train split, then `data.source.unlabelled`'s clips if any."""
        if self.unlabelled_tensors is None:
            return self.tensors["train"]
        return tuple(torch.cat([a, b]) for a, b in zip(self.tensors["train"], self.unlabelled_tensors))  # type: ignore[return-value]

    def _load_table(self) -> ClipTable:
        if self.table is None:  # from_table() sets it; otherwise read (or reuse the cache of) the audio files
            corpus = self.corpus()
            if self._on_disk(len(corpus.tracks)):
                return self._load_store(corpus)
            table, cache_path, self.cache_hit = load_or_build(
                corpus.tracks, corpus.genres, self.spec, self.cache_dir, self.workers, self.progress
            )
            self.table = table.carry(corpus.tracks)
            self.cache_key = Path(cache_path).stem if cache_path else "no-cache"
            log.info(
                "clip table: %d clips from %d tracks (%s)",
                len(self.table),
                len(self.table.track_ids),
                f"cache hit {cache_path}" if self.cache_hit else f"built, cached at {cache_path}",
            )
        return self.table

    def _on_disk(self, n_tracks: int) -> bool:
        """data.store.mode: `disk`, `memory`, or `auto`: disk where the clips' features would pass data.store.memory_budget_mb."""
        if self.store_mode != "auto":
            return self.store_mode == "disk"
        estimate_mb = n_tracks * self.spec.clips_per_track * self.spec.feature_dim * 4 / 2**20
        return estimate_mb > self.memory_budget_mb

    def _load_store(self, corpus: Corpus) -> ClipTable:
        if self.cache_dir is None:
            raise UserError(
                "data.store.mode=disk keeps the clips under data.store.cache_dir, and it is null", "set data.store.cache_dir"
            )
        tracks, genres = corpus.tracks, corpus.genres
        folder = store_folder(self.cache_dir, cache_key(tracks, genres, self.spec))
        self.store, self.cache_hit = build_or_resume(tracks, genres, self.spec, folder, self.workers, self.progress)
        self.cache_key = folder.name
        store = self.store
        self.table = ClipTable(  # everything but the features, which stay on disk
            features=np.zeros((len(store), 0), dtype=np.float32),
            labels=store.labels,
            track_index=store.track_index,
            genres=store.genres,
            track_ids=store.track_ids,
            track_labels=store.track_labels,
            skipped=store.skipped,
        ).carry(tracks)
        self._feature_shape = store.feature_shape
        log.info("clip store: %d clips from %d tracks on disk at %s", len(store), len(store.track_ids), folder)
        return self.table

    def split_features(self, split: str) -> torch.Tensor:
        """A split's model inputs, all at once (the reports' raw-input views); read from disk for a disk store."""
        if self.stored:
            return self.stored[split][slice(0, len(self.stored[split]))][0]
        return self.tensors[split][0]

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", shuffle=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    def eval_dataloader(self, split: str) -> DataLoader:
        """Any split in a fixed order, for final scoring and plots."""
        return self._loader(split, shuffle=False)

    def serve_features(self, features: dict[str, torch.Tensor] | None) -> None:
        """Serve `features[split]` (one row per clip of the split, in its order: a frozen backbone's outputs,
        models/pretrained/cache.py) in place of the clips in every loader, same labels, songs and order; None serves
        the clips again. `split_features` always gives the clips."""
        self.served = {}
        for name, x in (features or {}).items():
            labels = self.stored[name] if self.stored else None
            y, track = (labels.labels, labels.tracks) if labels is not None else self.tensors[name][1:]
            self.served[name] = (x, y, track)

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        if self.served:
            return self._batches(InMemoryClips(*self.served["train" if shuffle else split]), shuffle)
        if self.stored:
            return self._batches(self.stored["train" if shuffle else split], shuffle)
        tensors = self.training_tensors() if shuffle else self.tensors[split]
        dataset = InMemoryClips(*tensors)
        if shuffle and self.random_crop:  # training only: evaluation always sees the stored clips
            dataset = self._train_crops = RandomCrops(*tensors, seed=self.seed)
            if self._crop_state is not None:
                dataset.generator.set_state(self._crop_state)
        return self._batches(dataset, shuffle)

    def _batches(self, dataset: Any, shuffle: bool) -> DataLoader:
        """A loader of whole batches, each one index tensor (or slice) into `dataset`: in memory or on disk alike."""
        if not shuffle:
            sampler = TensorBatches(len(dataset), self.eval_batch_size, shuffle=False)
            # batch_size=None: each index tensor from the sampler is one batch, sliced in one go.
            return DataLoader(dataset, sampler=sampler, batch_size=None)
        # One shuffled order cut into minibatches_per_step * batch_size clips, each cut into minibatches.
        group = self.minibatches_per_step
        sampler = TensorBatches(len(dataset), self.batch_size * group, shuffle=True, seed=self.seed)
        if self._train_order is not None:  # a resumed fit: the shuffling goes on where the checkpoint left it
            sampler.generator.set_state(self._train_order)
        self._train_sampler = sampler
        collate: Any = SplitIntoMinibatches(self.batch_size) if group > 1 else None
        return DataLoader(dataset, sampler=sampler, batch_size=None, collate_fn=collate)

    def state_dict(self) -> dict[str, Any]:
        """Saved in checkpoints so a trained model can preprocess new audio the same way, and a resumed fit shuffles
        as an uninterrupted one would (the training order's generator, in full checkpoints)."""
        state = {"genres": self.class_names, **Preprocessing(self.spec, self.mean, self.std).to_state()}
        if self._train_sampler is not None:
            state["train_order"] = self._train_sampler.generator.get_state()
        if self._train_crops is not None:
            state["train_crops"] = self._train_crops.generator.get_state()
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._train_order = state_dict.get("train_order")
        if self._train_order is not None and self._train_sampler is not None:
            self._train_sampler.generator.set_state(self._train_order)
        self._crop_state = state_dict.get("train_crops")
        if self._crop_state is not None and self._train_crops is not None:
            self._train_crops.generator.set_state(self._crop_state)
        saved = Preprocessing.from_state({"spec": self.spec.as_dict(), **state_dict})
        if saved.mean is not None:
            self.mean, self.std = saved.mean, saved.std

    # --- what the rest of the pipeline needs -----------------------------------------------------

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One clip's shape as the model gets it: `(500,)` for the paper's front-end, `(bands, frames)` for maps."""
        return self._feature_shape or self.spec.feature_shape

    @property
    def input_kind(self) -> str:
        """What one clip is (front_ends.KINDS): `map`, `waveform` or `vector`; augmentation asks it. Clips given in
        memory as 2-D arrays (`from_table`) are maps whatever `features` says."""
        return "map" if len(self.input_shape) == 2 else self.spec.front_end.kind

    @property
    def num_classes(self) -> int:
        return len(self._load_table().genres)

    @property
    def class_names(self) -> list[str]:
        return list(self._load_table().genres)

    @property
    def track_ids(self) -> list[str]:
        """Track names by track index (the `track` of each batch)."""
        return list(self._load_table().track_ids)

    @property
    def skipped_files(self) -> list[dict]:
        return list(self._load_table().skipped)

    def split_profile(self, split: str) -> list[dict[str, Any]]:
        """Clips and songs per genre in a split (the MLflow dataset's table)."""
        table = self._load_table()
        labels, tracks = table.labels[self.indices[split]], table.track_index[self.indices[split]]
        return [
            {"genre": genre, "clips": int((labels == g).sum()), "songs": len(np.unique(tracks[labels == g]))}
            for g, genre in enumerate(table.genres)
        ]

    def split_tracks(self) -> list[dict[str, Any]]:
        """Every track and the split it is in, with its clip count (a segment split spreads a track)."""
        table = self._load_table()
        rows = []
        for name in SPLIT_NAMES:
            tracks, counts = np.unique(table.track_index[self.indices[name]], return_counts=True)
            rows += [
                {"track_id": table.track_ids[t], "genre": table.genres[table.track_labels[t]], "split": name, "clips": int(c)}
                for t, c in zip(tracks, counts)
            ]
        return rows
