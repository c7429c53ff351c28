"""A labelled GTZAN-layout folder's clips embedded three ways, on exactly the same clips: by the trained model, by
the same architecture with random weights, and as `features=stats` (the classical MFCC + log-mel statistics).
The two brackets say what a figure means: training that does not beat random weights learned nothing that
carries, and an embedding that does not beat the statistics is not worth its network. Named pretrained brackets
(evaluation/pretrained_brackets.py: frozen musicnn by default, any HEAR-API module) join them on the same songs and
splits: what the off-the-shelf alternative gets."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from genre_style.data import front_ends
from genre_style.data.audio import ClipSpec
from genre_style.data.clip_table import ClipTable
from genre_style.data.corpus import available_genres, discover_tracks, parse_genres, resolve_genres
from genre_style.data.preprocess import load_or_build
from genre_style.errors import UserError
from genre_style.evaluation.pretrained_brackets import DEFAULT as DEFAULT_BRACKETS
from genre_style.evaluation.pretrained_brackets import Bracket, aligned, bracket_embeddings, parse_all
from genre_style.evaluation.probes import ClipEmbeddings, DownstreamResult, score_embeddings
from genre_style.inference import Embedder, standardize

# The classical baseline's front-end with its own settings, whatever the model's front-end.
STATS_SETTINGS: dict[str, Any] = {"features": front_ends.CLASSICAL, **front_ends.CLASSICAL_SETTINGS}
STATS_NAME = f"features={front_ends.CLASSICAL}"
EMBEDDINGS = ("model", "random weights", STATS_NAME)  # what three_embeddings returns, in order
BATCH = 512


def labelled_clips(
    root: str | Path,
    genres: str | Sequence[str],
    spec: ClipSpec,
    cache_dir: str | Path | None,
    workers: int | None = None,
    progress: bool = False,
) -> ClipTable:
    """The clips of a labelled folder through `spec` (cached like training's); at least two genres."""
    return labelled_table(root, genres, spec, cache_dir, workers, progress)[0]


def labelled_table(
    root: str | Path,
    genres: str | Sequence[str],
    spec: ClipSpec,
    cache_dir: str | Path | None,
    workers: int | None = None,
    progress: bool = False,
) -> tuple[ClipTable, str | None]:
    """`labelled_clips`, and the clip cache's key (None without a cache): what a frozen backbone's cache is keyed by."""
    names = parse_genres(genres) or available_genres(root)
    if len(names) < 2:
        raise UserError(
            f"{root} has {len(names)} genre ({', '.join(names)}): a downstream evaluation needs at least two",
            "point it at a folder with two or more genre folders, or list more with --genres",
        )
    names = resolve_genres(root, names)  # unknown or repeated genres: named, with the genres found
    table, path, _ = load_or_build(discover_tracks(root, names), names, spec, cache_dir, workers, progress)
    songs_per_genre = np.bincount(table.track_labels, minlength=len(names))
    if songs_per_genre.min() < 2:
        short = names[int(songs_per_genre.argmin())]
        raise UserError(
            f"genre {short!r} in {root} has {songs_per_genre.min()} usable song(s): song-level splits need 2 or more",
            f"add songs to {short}, or leave it out with --genres",
        )
    return table, (Path(path).stem if path else None)


def model_embeddings(embedder: Embedder, table: ClipTable, name: str) -> ClipEmbeddings:
    """The embedder's clip embeddings of a table built with its own spec (standardised as in training)."""
    x = table.features.reshape(len(table), *embedder.spec.feature_shape)
    chunks = []
    for start in range(0, len(x), BATCH):
        block = np.array(x[start : start + BATCH], dtype=np.float32)
        block = standardize(block, embedder.preprocessing.mean, embedder.preprocessing.std)
        chunks.append(embedder.outputs(block)[0])
    return ClipEmbeddings(name, np.concatenate(chunks), table.labels, table.track_index)


def random_weights(embedder: Embedder, seed: int) -> Embedder:
    """The same architecture and preprocessing, freshly initialised (`seed`): the no-training bracket."""
    import torch

    torch.manual_seed(seed)
    model = type(embedder.model)(**dict(embedder.model.hparams))
    return Embedder(model, embedder.genres, embedder.preprocessing)


def three_embeddings(
    embedder: Embedder,
    root: str | Path,
    genres: str | Sequence[str],
    clips_per_track: int = 20,
    cache_dir: str | Path | None = None,
    workers: int | None = None,
    seed: int = 0,
    progress: bool = False,
    brackets: Sequence[Bracket] = (),
    notes: list[str] | None = None,
) -> tuple[list[str], list[ClipEmbeddings]]:
    """(genre names, [model, random weights, features=stats, *the pretrained `brackets`]) on the same clips of
    `root`; a bracket that cannot be computed here is left out with a one-line note appended to `notes`."""
    spec = replace(embedder.spec, clips_per_track=clips_per_track)
    table, key = labelled_table(root, genres, spec, cache_dir, workers, progress)
    stats_spec = replace(spec, **STATS_SETTINGS)
    stats_table = labelled_clips(root, table.genres, stats_spec, cache_dir, workers, progress)
    if stats_table.track_ids != table.track_ids or not np.array_equal(stats_table.track_index, table.track_index):
        raise RuntimeError("the statistics bracket did not get the same clips as the model")  # same files, same cuts
    stats = ClipEmbeddings(STATS_NAME, stats_table.features, stats_table.labels, stats_table.track_index)
    trained = model_embeddings(embedder, table, EMBEDDINGS[0])
    untrained = model_embeddings(random_weights(embedder, seed), table, EMBEDDINGS[1])
    others, left_out = bracket_embeddings(brackets, root, table, key, spec, cache_dir)
    if notes is not None:
        notes += left_out
    return list(table.genres), aligned([trained, untrained, stats], table, others)


def evaluate_folder(
    embedder: Embedder,
    root: str | Path,
    genres: str | Sequence[str] = "all",
    name: str | None = None,
    out_dir: Path | None = None,
    splits: int = 10,
    test_share: float = 0.3,
    episodes: int = 100,
    clips_per_track: int = 20,
    cache_dir: str | Path | None = None,
    seed: int = 0,
    brackets: str | Sequence[str] | None = DEFAULT_BRACKETS,
) -> tuple[str, DownstreamResult]:
    """Embed `root` three ways and with each named pretrained bracket (`brackets`: pretrained_brackets.parse_all),
    score them, write `<out_dir>/<name>.md` and `.json`; (name, DownstreamResult)."""
    name = name or Path(root).resolve().name
    notes: list[str] = []
    genre_names, embeddings = three_embeddings(
        embedder, root, genres, clips_per_track, cache_dir, None, seed, brackets=parse_all(brackets), notes=notes
    )
    result = score_embeddings(embeddings, genre_names, splits, test_share, episodes, seed=seed)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        heading = (
            f"# Frozen embeddings on `{name}`: {', '.join(genre_names)} ({result.n_songs} songs, {result.n_clips} clips)\n\n"
            f"Mean [95 % interval] over {splits} song-level splits ({100 * (1 - test_share):.0f}/{100 * test_share:.0f}), "
            f"in %; few-shot: {episodes} episodes a split; retrieval: every clip against all others.\n\n"
            + "".join(f"Note: {note}.\n\n" for note in notes)
        )
        (out_dir / f"{name}.md").write_text(heading + result.markdown() + "\n")
        (out_dir / f"{name}.json").write_text(json.dumps({"name": name, "root": str(root), **result.to_dict()}, indent=1))
    return name, result


def downstream_after_training(
    checkpoint: Path,
    entries: Sequence[dict[str, Any]],
    out_dir: Path,
    cache_dir: str | Path | None,
    seed: int,
    brackets: str | Sequence[str] | None = DEFAULT_BRACKETS,
) -> dict[str, float]:
    """`evaluation.downstream`: each entry ({root, genres, name, splits, episodes, ...}) scored with the run's best
    checkpoint beside `brackets` (`evaluation.pretrained_brackets`), as `python -m genre_style.downstream` would; flat
    metrics `downstream/<name>/...`."""
    embedder = Embedder.from_checkpoint(checkpoint)
    metrics: dict[str, float] = {}
    for entry in entries:
        settings = dict(entry)
        name, result = evaluate_folder(
            embedder,
            settings.pop("root"),
            out_dir=out_dir,
            cache_dir=cache_dir,
            **{"seed": seed, "brackets": brackets, **settings},
        )
        metrics.update(result.metrics(f"downstream/{name}"))
    return metrics
