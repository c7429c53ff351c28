"""Track-list splits: GTZAN's fault-filtered (artist-filtered) lists, shipped as package data (see README.md
here for their source), or a user's own lists in the same form."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from genre_style.errors import UserError

LIST_FILES = {"train": "train_filtered.txt", "val": "valid_filtered.txt", "test": "test_filtered.txt"}
# A user's folder may also name them plainly.
PLAIN_NAMES = {"train": ("train.txt",), "val": ("valid.txt", "val.txt"), "test": ("test.txt",)}


def fault_filtered_split(lists: str | Path | None = None) -> dict[str, str]:
    """track id (`jazz.00054`) -> split name (train, val or test).

    `lists`: a folder holding one file per split (`train_filtered.txt`, `valid_filtered.txt`,
    `test_filtered.txt`, or `train.txt`, `valid.txt`/`val.txt`, `test.txt`), one track a line as
    `<genre>/<genre>.000NN.wav` or just `<genre>.000NN`; None reads the shipped GTZAN lists.
    """
    split_of = {}
    for split, name in LIST_FILES.items():
        text = resources.files(__name__).joinpath(name).read_text() if lists is None else _read_list(Path(lists), split)
        for line in text.split():
            split_of[line.rsplit("/", 1)[-1].rsplit(".", 1)[0] if line.endswith((".wav", ".au")) else line] = split
    return split_of


def _read_list(folder: Path, split: str) -> str:
    candidates = [folder / LIST_FILES[split], *(folder / n for n in PLAIN_NAMES[split])]
    found = next((p for p in candidates if p.is_file()), None)
    if found is None:
        raise UserError(
            f"data.split.lists={folder} has no list for the {split} split",
            f"put one track a line in {' or '.join(p.name for p in candidates)} there",
        )
    return found.read_text()
