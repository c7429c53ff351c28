"""A numba cache no concurrent process can corrupt: each process claims a cache folder of its own.

librosa compiles its numba kernels with `cache=True`, into `NUMBA_CACHE_DIR` (by default beside librosa's own files).
numba's on-disk cache is not safe to fill from two processes at once (numba/numba#10128: two processes writing one
index crashed a CI run, and parallel sweep trials or preprocessing workers in a fresh environment can meet the same
race). So each process claims a *slot*, `<cache>/numba/slot-<n>`, by holding an exclusive lock on `slot-<n>.lock` for
its lifetime (released by the OS when it exits, however it exits): no two live processes share a slot, and a later
process reuses a free slot's compiled kernels instead of compiling again.

- `<cache>` is `$GENRE_STYLE_OUTPUTS/cache` when set, else `./outputs/cache` in a project checkout (where training
  keeps its caches), else the user's cache folder (`$XDG_CACHE_HOME` or `~/.cache`, `/genre-style`).
- A `NUMBA_CACHE_DIR` you set yourself is left alone.
- A child process claims its own slot: forked ones when they start (`os.register_at_fork`), spawned ones when they
  import the package (they inherit a `NUMBA_CACHE_DIR` marked as claimed by another process, `GENRE_STYLE_NUMBA_OWNER`).

numba reads `NUMBA_CACHE_DIR` when it is imported, so `claim` runs when the package is imported, before librosa.
A process forked after importing librosa keeps its parent's kernels' cache locations (numba fixed them on import);
none of genre-style's does: its preprocessing workers import librosa only once started.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

VARIABLE = "NUMBA_CACHE_DIR"
OWNER = "GENRE_STYLE_NUMBA_OWNER"  # "<pid>:<folder>": the folder this package chose, and for which process
SLOTS = 64

_held: Any = None  # the lock of this process's slot, held until the process exits


def cache_root() -> Path:
    """Where the slots live (see the module docstring)."""
    outputs = os.environ.get("GENRE_STYLE_OUTPUTS")
    if outputs:
        return Path(outputs) / "cache" / "numba"
    if (Path.cwd() / "outputs").is_dir():
        return Path.cwd() / "outputs" / "cache" / "numba"
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "genre-style" / "numba"


def _ours() -> bool:
    """Whether NUMBA_CACHE_DIR is unset, or was set by this package (in this process or a parent)."""
    value = os.environ.get(VARIABLE)
    if value is None:
        return True
    owner = os.environ.get(OWNER, "")
    return owner.partition(":")[2] == value


def claim(root: Path | None = None) -> str | None:
    """Set NUMBA_CACHE_DIR to a slot this process holds; returns it (None: the user's own NUMBA_CACHE_DIR is kept)."""
    global _held
    if not _ours():
        return None
    owner = os.environ.get(OWNER, "")
    if owner.partition(":")[0] == str(os.getpid()) and _held is not None:
        return os.environ[VARIABLE]  # already claimed by this process
    try:
        root = root or cache_root()
    except (OSError, RuntimeError):  # no working directory or home folder to be found: a private folder
        root = None
    folder = _free_slot(root)
    os.environ[VARIABLE] = folder
    os.environ[OWNER] = f"{os.getpid()}:{folder}"
    return folder


def _free_slot(root: Path | None) -> str:
    global _held
    from filelock import FileLock, Timeout

    try:
        if root is None:
            raise OSError("no cache folder")
        root.mkdir(parents=True, exist_ok=True)
        for slot in range(SLOTS):
            lock = FileLock(str(root / f"slot-{slot}.lock"))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                continue
            _held = lock
            return str(root / f"slot-{slot}")
    except OSError:
        pass  # a read-only or full disk: a private folder below
    _held = True
    private = tempfile.mkdtemp(prefix=f"genre-style-numba-{os.getpid()}-")
    atexit.register(_remove_private, private, os.getpid())
    return private


def _remove_private(folder: str, maker: int) -> None:
    """At exit: a forked child inherits the hook, so only the process that made the folder removes it."""
    if os.getpid() == maker:
        shutil.rmtree(folder, ignore_errors=True)


def _after_fork() -> None:
    """A forked child holds no lock of its own (its inherited one is its parent's): claim a slot."""
    global _held
    if _ours() and os.environ.get(VARIABLE):
        _held = None
        claim()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)
