"""`python -m genre_style.download`: get GTZAN into the default data root, from a mirror or an archive you have.

Downloads go through pooch (hash-checked, written to a temporary file and moved into place only when
the hash matches); extraction goes to a staging folder renamed into place at the end, so a killed or
failed run never leaves something that looks like a data set. A second call finds the marker and
does nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path
from typing import Sequence

from genre_style.errors import UserError, command

log = logging.getLogger("genre_style.download")

GTZAN_MD5 = "5b3d6dddb579ab49814ab86dba69e7c7"  # the original genres.tar.gz
MIRRORS = (
    "https://huggingface.co/datasets/marsyas/gtzan/resolve/main/data/genres.tar.gz",
    "http://opihi.cs.uvic.ca/sound/genres.tar.gz",
)
MARKER = ".genre_style_download.json"
MANUAL = (
    "download GTZAN yourself (genres.tar.gz, or Kaggle's 'GTZAN Dataset - Music Genre Classification' zip), "
    "then run `python -m genre_style.download --archive <file>`; or unpack it anywhere and pass data.source.root=<folder>"
)


def default_root() -> Path:
    """Where `python -m genre_style.train` looks for GTZAN by default (GTZAN_ROOT, else outputs/data/gtzan)."""
    if os.environ.get("GTZAN_ROOT"):
        return Path(os.environ["GTZAN_ROOT"]).expanduser()
    outputs = Path(os.environ.get("GENRE_STYLE_OUTPUTS") or Path.cwd() / "outputs")
    return outputs / "data" / "gtzan"


def md5sum(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 - a checksum, not security
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(urls: Sequence[str], md5: str | None, cache_dir: Path) -> Path:
    """Try each mirror in turn; return the verified archive."""
    import pooch
    import requests

    problems = []
    for url in urls:
        try:
            return Path(
                pooch.retrieve(
                    url,
                    known_hash=f"md5:{md5}" if md5 else None,
                    fname="genres.tar.gz",
                    path=cache_dir,
                    progressbar=sys.stderr.isatty(),
                )
            )
        except ValueError as exc:  # pooch: the hash does not match (the file is deleted)
            problems.append(f"{url}: checksum mismatch ({str(exc).splitlines()[0]})")
        except requests.HTTPError as exc:
            problems.append(f"{url}: HTTP {exc.response.status_code if exc.response is not None else 'error'}")
        except (requests.ConnectionError, requests.Timeout) as exc:
            problems.append(f"{url}: no connection ({type(exc).__name__})")
        except OSError as exc:
            raise UserError(f"could not write the download to {cache_dir} ({exc})", f"free disk space, or {MANUAL}") from None
    raise UserError("could not download GTZAN:\n  " + "\n  ".join(problems), MANUAL)


def _extract(archive: Path, staging: Path) -> None:
    if tarfile.is_tarfile(archive):
        with tarfile.open(archive) as tar:
            tar.extractall(staging, filter="data")
    elif zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            zipped.extractall(staging)
    else:
        raise UserError(f"{archive} is neither a .tar.gz nor a .zip archive", MANUAL)


def install(
    root: Path, archive: Path | None = None, urls: Sequence[str] = MIRRORS, md5: str | None = GTZAN_MD5, force: bool = False
) -> Path:
    """Make `root` hold GTZAN; return the folder with the genre folders."""
    from genre_style.data.gtzan import find_genre_root

    root = Path(root).expanduser()
    if (root / MARKER).exists() and not force:
        log.info("GTZAN is already in %s (delete it or pass --force to fetch again)", root)
        return find_genre_root(root)
    if root.exists() and any(root.iterdir()) and not (root / MARKER).exists() and not force:
        raise UserError(
            f"{root} exists and is not empty, but was not filled by this command",
            "pass --root to another folder, remove it, or use it directly with data.source.root=" + str(root),
        )
    root.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root.parent, prefix=f".{root.name}.download.") as tmp_name:
        tmp = Path(tmp_name)
        if archive is None:
            archive, source = _fetch(urls, md5, tmp), "download"
        else:
            archive = Path(archive).expanduser()
            if not archive.is_file():
                raise UserError(f"archive {archive} does not exist", MANUAL)
            source = str(archive)
            actual = md5sum(archive)
            if md5 and actual != md5:
                log.warning(
                    "%s has md5 %s, not the original archive's %s (fine for Kaggle's zip); using it", archive, actual, md5
                )
        staging = tmp / "extracted"
        try:
            _extract(archive, staging)
            genre_root = find_genre_root(staging)  # raises if the archive holds no genre folders
            (staging / MARKER).write_text(json.dumps({"source": source, "archive_md5": md5sum(archive)}))
            if root.exists():
                shutil.rmtree(root)
            staging.rename(root)
        except OSError as exc:
            raise UserError(f"could not unpack {archive} into {root.parent} ({exc})", f"free disk space, or {MANUAL}") from None
        except UserError as exc:
            raise UserError(f"{archive} does not hold GTZAN's genre folders ({exc.problem})", MANUAL) from None
    genre_root = root / genre_root.relative_to(staging)
    log.info("GTZAN is ready in %s", genre_root)
    return genre_root


@command
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m genre_style.download", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=None, help="where to put GTZAN (default: $GTZAN_ROOT or outputs/data/gtzan)")
    parser.add_argument("--archive", type=Path, help="use this genres.tar.gz or Kaggle zip instead of downloading")
    parser.add_argument("--url", action="append", dest="urls", help="a mirror to try (repeatable; default: the known mirrors)")
    parser.add_argument(
        "--md5", default=GTZAN_MD5, help="expected MD5 of the archive (default: the original's); '' skips the check"
    )
    parser.add_argument("--force", action="store_true", help="fetch and unpack again even if GTZAN is there")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    genre_root = install(args.root or default_root(), args.archive, args.urls or MIRRORS, args.md5 or None, args.force)
    print(genre_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
