"""Balancing and train/val/test splits: the paper's random clip split, an honest track split, an artist-grouped one
(no artist in two splits), and splits given with the data (GTZAN's published lists, a manifest's `split` column).

The split modes (`data.split.mode=<name>`) are a registry, as the front-ends are: a new mode is one function registered
with `@split_mode("name")`, taking a `SplitInput` and returning each split's clips; the data module, the config
checks and the docs' list ask `SPLITS`. Nothing else to edit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from genre_style.data.clip_table import ClipTable
from genre_style.errors import UserError

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class SplitInput:
    """What a split mode reads: the clips to split (`clips`, indices into `table`, after balancing), the corpus's
    tracks through `table` (ids, genres, and a source's `track_splits` / `track_groups`), and `data.split.sizes`,
    `data.seed`, `data.split.lists`."""

    table: ClipTable
    clips: np.ndarray
    sizes: Sequence[float]
    seed: int
    lists: str | None = None

    @property
    def track_index(self) -> np.ndarray:
        """The track of each clip to split."""
        return self.table.track_index[self.clips]


SplitFunction = Callable[[SplitInput], dict[str, np.ndarray]]


@dataclass(frozen=True)
class SplitMode:
    """A registered `data.split.mode`: `split` returns, per split name, positions into `SplitInput.clips`; `given` modes
    are used as published (no clips dropped to balance them); `reads` names the track fields it needs from the
    source (`split`, `group`), checked before any audio is read."""

    name: str
    split: SplitFunction
    given: bool = False
    reads: tuple[str, ...] = ()
    summary: str = ""


SPLITS: dict[str, SplitMode] = {}


def split_mode(name: str, *, given: bool = False, reads: Sequence[str] = ()) -> Callable[[SplitFunction], SplitFunction]:
    """Register a split mode under `name` (`data.split.mode=<name>`); its docstring's first line is its summary."""

    def register(fn: SplitFunction) -> SplitFunction:
        if name in SPLITS and SPLITS[name].split is not fn:
            raise ValueError(f"a split mode named {name!r} is already registered ({SPLITS[name].split.__qualname__})")
        summary = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
        SPLITS[name] = SplitMode(name, fn, given, tuple(reads), summary)
        return fn

    return register


def get_split_mode(name: str) -> SplitMode:
    """The registered mode `name`, or a UserError listing them."""
    if name not in SPLITS:
        listed = "; ".join(f"{mode.name} ({mode.summary.rstrip('.')})" for mode in SPLITS.values())
        raise UserError(f"unknown data.split.mode={name!r}", f"use one of: {listed}")
    return SPLITS[name]


def balance_classes(labels: np.ndarray, seed: int) -> np.ndarray:
    """Indices keeping the same number of clips per class (the smallest class's count), chosen at random."""
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    keep = [rng.choice(np.flatnonzero(labels == c), size=counts.min(), replace=False) for c in classes]
    return np.sort(np.concatenate(keep))


def resolve_sizes(sizes: Sequence[float], total: int, unit: str) -> list[int]:
    """Turn fractions (all <= 1) or counts into three counts that fit in `total`."""
    if len(sizes) != 3 or any(s < 0 for s in sizes):
        raise UserError(
            f"data.split.sizes must be three non-negative numbers, got {list(sizes)}",
            "e.g. [0.75,0.125,0.125] or [6000,1000,1000]",
        )
    if all(s <= 1 for s in sizes):
        if sum(sizes) > 1 + 1e-9:
            raise UserError(f"data.split.sizes fractions add up to {sum(sizes):.3f} > 1", "make them sum to at most 1")
        counts = [int(round(s * total)) for s in sizes]
        if abs(sum(sizes) - 1) < 1e-9:  # everything is used: train takes what rounding left over
            counts[0] = total - counts[1] - counts[2]
        else:
            counts[0] = min(counts[0], total - counts[1] - counts[2])
    else:
        counts = [int(s) for s in sizes]
    if sum(counts) > total:
        raise UserError(
            f"data.split.sizes asks for {sum(counts)} {unit} but only {total} are available",
            "lower data.split.sizes, use fractions, or add data (more tracks or data.clips.clips_per_track)",
        )
    if counts[0] < 1 or counts[1] < 1 or counts[2] < 1:
        raise UserError(
            f"split sizes {counts} leave a split empty ({total} {unit} in all)", "add data or change data.split.sizes"
        )
    return counts


def segment_split(n_clips: int, sizes: Sequence[float], seed: int) -> dict[str, np.ndarray]:
    """The paper's protocol: clips shuffled at random, so clips of one song land in several splits."""
    counts = resolve_sizes(sizes, n_clips, "clips")
    order = np.random.default_rng(seed).permutation(n_clips)
    bounds = np.cumsum(counts)
    return {
        "train": np.sort(order[: bounds[0]]),
        "val": np.sort(order[bounds[0] : bounds[1]]),
        "test": np.sort(order[bounds[1] : bounds[2]]),
    }


def track_split(
    track_index: np.ndarray,
    track_labels: np.ndarray,
    sizes: Sequence[float],
    seed: int,
    genre_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Every clip of a track in one split; tracks drawn per genre so each split keeps the genre mix."""
    rng = np.random.default_rng(seed)
    present = np.unique(track_index)
    split_of_track = {}
    fractions = all(s <= 1 for s in sizes)
    genres = np.unique(track_labels[present])
    for genre in genres:
        tracks = rng.permutation(present[track_labels[present] == genre])
        if len(tracks) < 3:
            raise UserError(
                f"genre {genre_names[genre] if genre_names else genre!r} has {len(tracks)} usable track(s); a track split needs at least 3 per genre",
                "add tracks, or use data.split.mode=segment",
            )
        if fractions:
            counts = resolve_sizes(sizes, len(tracks), "tracks")
        else:  # counts of tracks in all: share them out across genres
            counts = resolve_sizes([int(s) // len(genres) for s in sizes], len(tracks), "tracks per genre")
        bounds = np.cumsum(counts)
        for name, lo, hi in zip(SPLIT_NAMES, [0, bounds[0], bounds[1]], bounds):
            for t in tracks[lo:hi]:
                split_of_track[int(t)] = name
    clip_split = np.array([split_of_track.get(int(t), "") for t in track_index])
    return {name: np.flatnonzero(clip_split == name) for name in SPLIT_NAMES}


def listed_split(
    track_ids: Sequence[str],
    track_index: np.ndarray,
    track_labels: np.ndarray,
    genres: Sequence[str],
    split_of: dict[str, str],
    unusable: Sequence[str] = (),
) -> dict[str, np.ndarray]:
    """A published split given as track-id lists (e.g. GTZAN's fault-filtered one), for the selected genres.

    Tracks on disk but not on the lists (the faulty excerpts) are left out. A partial copy (e.g. a few
    genres' or a few hundred songs of GTZAN) keeps the published assignment of the tracks it has: a warning
    counts the listed tracks that are absent. Refused: a copy with none of the listed tracks, a split left
    empty, a genre without a training song.
    """
    wanted = {t for t in split_of if t.split(".")[0] in set(genres)}
    present = set(track_ids) | set(unusable)
    if not wanted & present:
        raise UserError(
            "none of the tracks on disk is on the split lists: this does not look like GTZAN "
            f"(expected names like {sorted(wanted)[:2]}, found e.g. {list(track_ids)[:2]})",
            "use data.split.mode=track or data.split.mode=segment for other corpora, or data.split.lists=<your lists>",
        )
    names = np.array([split_of.get(t, "") for t in track_ids])
    songs = {name: {t for t in track_ids if split_of.get(t) == name} for name in SPLIT_NAMES}
    missing = sorted(wanted - present)
    if missing:
        log.warning(
            "%d of the %d listed tracks for genres %s are not on disk (e.g. %s): the split uses the %d present "
            "(train %d, val %d, test %d songs)",
            len(missing), len(wanted), list(genres), ", ".join(missing[:3]), len(wanted) - len(missing),
            *(len(songs[n]) for n in SPLIT_NAMES),
        )  # fmt: skip
    for name in SPLIT_NAMES:
        if not songs[name]:
            raise UserError(
                f"the {name} split is empty: none of its listed tracks for genres {list(genres)} is on disk",
                "add those tracks, choose other data.source.genres, or use data.split.mode=track",
            )
    for genre in genres:
        if not any(t.split(".")[0] == genre for t in songs["train"]):
            raise UserError(
                f"genre {genre!r} has no training song on the split lists among the tracks on disk",
                f"add {genre}'s listed training tracks, or drop {genre} from data.source.genres",
            )
        absent = [name for name in ("val", "test") if not any(t.split(".")[0] == genre for t in songs[name])]
        if absent:
            log.warning("genre %r has no %s song on the lists among the tracks on disk", genre, " and no ".join(absent))
    clip_split = names[track_index]
    return {name: np.flatnonzero(clip_split == name) for name in SPLIT_NAMES}


def assigned_split(track_index: np.ndarray, split_of_track: Sequence[str | None]) -> dict[str, np.ndarray]:
    """Each clip in its track's given split (`split_of_track[t]`: train, val, test, or None to leave it out)."""
    names = np.array([name or "" for name in split_of_track])
    clip_split = names[track_index] if len(track_index) else np.array([], dtype=str)
    return {name: np.flatnonzero(clip_split == name) for name in SPLIT_NAMES}


def group_split(
    track_index: np.ndarray,
    track_labels: np.ndarray,
    track_groups: Sequence[str],
    sizes: Sequence[float],
    seed: int,
    genre_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Every track of a group (an artist) in one split, so no artist is heard in training and scored in test.
    A group goes with its most common genre; per genre, groups are dealt largest first (ties in a random order
    drawn from `seed`) to the split furthest below its share of that genre's tracks (`sizes`, fractions)."""
    if any(s > 1 for s in sizes) or len(sizes) != 3:
        raise UserError(
            f"data.split.mode=artist takes data.split.sizes as three fractions, got {list(sizes)}", "e.g. [0.7,0.15,0.15]"
        )
    rng = np.random.default_rng(seed)
    present = np.unique(track_index)
    members: dict[str, list[int]] = {}
    for t in present:
        members.setdefault(track_groups[int(t)], []).append(int(t))
    genre_of = {g: int(np.bincount(track_labels[ts]).argmax()) for g, ts in members.items()}
    split_of_track: dict[int, str] = {}
    for genre in sorted(set(genre_of.values())):
        groups = [g for g in members if genre_of[g] == genre]
        name = genre_names[genre] if genre_names else genre
        if len(groups) < 3:
            raise UserError(
                f"genre {name!r} has {len(groups)} artist(s); data.split.mode=artist needs at least 3 per genre",
                "add songs of more artists, or use data.split.mode=track",
            )
        order = [groups[i] for i in rng.permutation(len(groups))]
        order.sort(key=lambda g: -len(members[g]))  # stable: equal sizes keep the random order
        total = sum(len(members[g]) for g in groups)
        filled = dict.fromkeys(SPLIT_NAMES, 0)
        for group in order:
            split = max(SPLIT_NAMES, key=lambda s: sizes[SPLIT_NAMES.index(s)] * total - filled[s])
            filled[split] += len(members[group])
            split_of_track.update(dict.fromkeys(members[group], split))
        empty = [s for s in SPLIT_NAMES if not filled[s] and sizes[SPLIT_NAMES.index(s)] > 0]
        if empty:
            raise UserError(
                f"genre {name!r}: its {len(groups)} artists leave the {' and '.join(empty)} split(s) empty",
                "add songs of more artists, or change data.split.sizes",
            )
    clip_split = np.array([split_of_track.get(int(t), "") for t in track_index])
    return {name: np.flatnonzero(clip_split == name) for name in SPLIT_NAMES}


# --- the registered modes -------------------------------------------------------------------------------------------


@split_mode("segment")
def _segment(data: SplitInput) -> dict[str, np.ndarray]:
    """the paper's random clip split: clips of one song in several splits."""
    return segment_split(len(data.clips), data.sizes, data.seed)


@split_mode("track")
def _track(data: SplitInput) -> dict[str, np.ndarray]:
    """honest: every clip of a song in one split, songs drawn per genre."""
    table = data.table
    return track_split(data.track_index, table.track_labels, data.sizes, data.seed, table.genres)


@split_mode("fault_filtered", given=True)
def _fault_filtered(data: SplitInput) -> dict[str, np.ndarray]:
    """GTZAN's artist-filtered lists (or data.split.lists): songs of artists never heard."""
    from genre_style.data.fault_filtered import fault_filtered_split

    table = data.table
    unusable = [Path(s["path"]).stem for s in table.skipped]
    return listed_split(
        table.track_ids, data.track_index, table.track_labels, table.genres, fault_filtered_split(data.lists), unusable
    )


@split_mode("manifest", given=True, reads=("split",))
def _manifest(data: SplitInput) -> dict[str, np.ndarray]:
    """a manifest's own split column."""
    splits = data.table.track_splits
    left_out = sum(value is None for value in splits)
    if left_out:
        log.warning("%d of %d songs have no split in the manifest: they are left out", left_out, len(splits))
    return assigned_split(data.track_index, splits)


@split_mode("artist", reads=("group",))
def _artist(data: SplitInput) -> dict[str, np.ndarray]:
    """a manifest's artist column: no artist in two splits."""
    table = data.table
    groups = [g or f"<song {t}>" for g, t in zip(table.track_groups, table.track_ids)]  # no artist: a group of its own
    return group_split(data.track_index, table.track_labels, groups, data.sizes, data.seed, table.genres)
