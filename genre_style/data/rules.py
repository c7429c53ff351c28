"""The data settings' rules, each once: asked by the config checks (before anything heavy is imported) and by
`GenreDataModule`'s constructor (built from Python, benchmarks and notebooks skip the config checks). Light: the
front-end registry only (the split modes' rule is their registry's: `splits.get_split_mode`)."""

from __future__ import annotations

from genre_style.data import front_ends
from genre_style.errors import UserError

STORES = ("auto", "memory", "disk")  # data.store: where the clips' features live


def check_front_end(features: str | None) -> front_ends.FrontEnd:
    """The registered front-end `features` names (None: the default), or a UserError listing them."""
    if features is not None and features not in front_ends.REGISTRY:
        raise UserError(f"unknown front-end features={features!r}", f"use one of {', '.join(front_ends.REGISTRY)}")
    return front_ends.get(features)


def check_store(store: str) -> str:
    if store not in STORES:
        raise UserError(f"unknown data.store={store!r}", f"use one of {list(STORES)}")
    return store


def check_random_crop(random_crop: bool, features: str | None) -> None:
    """Random crops cut along time: a front-end without a time axis (a vector per clip) has none to cut."""
    if random_crop and check_front_end(features).kind == "vector":
        raise UserError(
            f"data.random_crop=true needs features with a time axis; features={features} has none",
            f"use features={'|'.join(front_ends.names('map') + front_ends.names('waveform'))}, or data.random_crop=false",
        )


def check_eval_clips(eval_clips_per_track: int | None, clips_per_track: int | None) -> None:
    """val/test score at most the clips a track has."""
    if eval_clips_per_track is None or clips_per_track is None:
        return
    if not 0 < eval_clips_per_track <= clips_per_track:
        raise UserError(
            f"data.eval_clips_per_track={eval_clips_per_track} must be between 1 and data.clips_per_track={clips_per_track}",
            "e.g. data.clips_per_track=33 data.eval_clips_per_track=20 (train on whole songs, score the paper's 20 clips)",
        )
