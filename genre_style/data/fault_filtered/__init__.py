"""The fault-filtered GTZAN split lists, shipped as package data (see README.md here for the source)."""

from __future__ import annotations

from importlib import resources

LIST_FILES = {"train": "train_filtered.txt", "val": "valid_filtered.txt", "test": "test_filtered.txt"}


def fault_filtered_split() -> dict[str, str]:
    """track id (`jazz.00054`) -> split name (train, val or test)."""
    split_of = {}
    for split, name in LIST_FILES.items():
        for line in resources.files(__name__).joinpath(name).read_text().split():
            split_of[line.rsplit("/", 1)[-1].rsplit(".", 1)[0]] = split
    return split_of
