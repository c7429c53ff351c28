"""Balancing and train/val/test splits: the paper's random clip split, an honest track split, an artist-grouped one
(no artist in two splits), and splits given with the data (GTZAN's published lists, a manifest's `split` column)."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from genre_style.errors import UserError

log = logging.getLogger(__name__)

SPLIT_NAMES = ("train", "val", "test")
# data.split: the paper's, the honest one, GTZAN's standard, a manifest's own, songs grouped by a manifest's artist
SPLIT_MODES = ("segment", "track", "fault_filtered", "manifest", "artist")
GIVEN_SPLITS = ("fault_filtered", "manifest")  # used as published: no clips dropped to balance them


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
            f"data.split_sizes must be three non-negative numbers, got {list(sizes)}",
            "e.g. [0.75,0.125,0.125] or [6000,1000,1000]",
        )
    if all(s <= 1 for s in sizes):
        if sum(sizes) > 1 + 1e-9:
            raise UserError(f"data.split_sizes fractions add up to {sum(sizes):.3f} > 1", "make them sum to at most 1")
        counts = [int(round(s * total)) for s in sizes]
        if abs(sum(sizes) - 1) < 1e-9:  # everything is used: train takes what rounding left over
            counts[0] = total - counts[1] - counts[2]
        else:
            counts[0] = min(counts[0], total - counts[1] - counts[2])
    else:
        counts = [int(s) for s in sizes]
    if sum(counts) > total:
        raise UserError(
            f"data.split_sizes asks for {sum(counts)} {unit} but only {total} are available",
            "lower data.split_sizes, use fractions, or add data (more tracks or data.clips_per_track)",
        )
    if counts[0] < 1 or counts[1] < 1 or counts[2] < 1:
        raise UserError(
            f"split sizes {counts} leave a split empty ({total} {unit} in all)", "add data or change data.split_sizes"
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
                "add tracks, or use data.split=segment",
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
            "use data.split=track or data.split=segment for other corpora, or data.split_lists=<your lists>",
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
                "add those tracks, choose other data.genres, or use data.split=track",
            )
    for genre in genres:
        if not any(t.split(".")[0] == genre for t in songs["train"]):
            raise UserError(
                f"genre {genre!r} has no training song on the split lists among the tracks on disk",
                f"add {genre}'s listed training tracks, or drop {genre} from data.genres",
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
        raise UserError(f"data.split=artist takes data.split_sizes as three fractions, got {list(sizes)}", "e.g. [0.7,0.15,0.15]")
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
                f"genre {name!r} has {len(groups)} artist(s); data.split=artist needs at least 3 per genre",
                "add songs of more artists, or use data.split=track",
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
                "add songs of more artists, or change data.split_sizes",
            )
    clip_split = np.array([split_of_track.get(int(t), "") for t in track_index])
    return {name: np.flatnonzero(clip_split == name) for name in SPLIT_NAMES}
