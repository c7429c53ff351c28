"""Getting GTZAN: a real HTTP server on 127.0.0.1, real archives, the fault-filtered split on real files."""

from __future__ import annotations

import functools
import hashlib
import http.server
import tarfile
import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from genre_style import download
from genre_style.data.datamodule import GenreDataModule
from genre_style.data.fault_filtered import fault_filtered_split
from genre_style.errors import UserError
from tests.conftest import write_wav

GENRES = ["jazz", "metal"]  # two genres keep the corpora small: 27+27+... listed tracks, 1 s each


def _gtzan_like(root: Path, extra: int = 1) -> Path:
    """Every fault-filtered track of GENRES, named like GTZAN's, plus `extra` unlisted (faulty) ones per genre."""
    split_of = fault_filtered_split()
    rng = np.random.default_rng(0)
    for genre in GENRES:
        listed = [t for t in sorted(split_of) if t.startswith(genre + ".")]
        unlisted = [f"{genre}.{n:05d}" for n in range(100) if f"{genre}.{n:05d}" not in split_of][:extra]
        for track in listed + unlisted:
            write_wav(root / genre / f"{track}.wav", 0.1 * rng.standard_normal(22050))
    return root


def _fault_filtered(root: Path) -> GenreDataModule:
    """GENRES of `root` on the fault-filtered split, read on one worker."""
    return GenreDataModule(
        source={"root": str(root), "genres": GENRES},
        split={"mode": "fault_filtered"},
        store={"cache_dir": None, "workers": 1},
        progress=False,
    )


def _archive(tmp: Path, kind: str) -> Path:
    source = _gtzan_like(tmp / "src", extra=0)
    if kind == "tar":
        path = tmp / "genres.tar.gz"
        with tarfile.open(path, "w:gz") as tar:
            tar.add(source, arcname="genres")
    else:  # Kaggle's zip: Data/genres_original/<genre>/...
        path = tmp / "gtzan-kaggle.zip"
        with zipfile.ZipFile(path, "w") as zipped:
            for f in source.rglob("*.wav"):
                zipped.write(f, Path("Data/genres_original") / f.relative_to(source))
    return path


@pytest.fixture
def mirror(tmp_path):
    """A static file server on 127.0.0.1 that counts requests."""
    served = tmp_path / "served"
    served.mkdir()
    hits = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            super().do_GET()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_port}", hits
    server.shutdown()


@pytest.mark.slow  # a local HTTP server (the `mirror` fixture): the full suite runs it, `make test-fast` leaves it out
def test_download_verifies_extracts_and_is_idempotent(tmp_path, mirror):
    served, url, hits = mirror
    archive = _archive(tmp_path, "tar")
    (served / "genres.tar.gz").write_bytes(archive.read_bytes())
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    root = tmp_path / "data" / "gtzan"
    assert (
        download.main(["--root", str(root), "--url", f"{url}/missing.tar.gz", "--url", f"{url}/genres.tar.gz", "--md5", md5]) == 0
    )
    assert sorted(p.name for p in (root / "genres").iterdir()) == sorted(GENRES)
    assert len(list(root.rglob("*.wav"))) == sum(t.split(".")[0] in GENRES for t in fault_filtered_split())
    assert hits == ["/missing.tar.gz", "/genres.tar.gz"]  # the 404 mirror was skipped for the next
    assert download.main(["--root", str(root), "--url", f"{url}/genres.tar.gz", "--md5", md5]) == 0
    assert len(hits) == 2  # second call: nothing fetched
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")]  # no staging left


@pytest.mark.slow  # a local HTTP server (the `mirror` fixture): the full suite runs it, `make test-fast` leaves it out
def test_a_corrupted_download_fails_the_checksum_and_leaves_nothing(tmp_path, mirror, capsys):
    served, url, _ = mirror
    good = _archive(tmp_path, "tar").read_bytes()
    (served / "genres.tar.gz").write_bytes(good[: len(good) // 2])
    root = tmp_path / "data" / "gtzan"
    assert download.main(["--root", str(root), "--url", f"{url}/genres.tar.gz", "--md5", hashlib.md5(good).hexdigest()]) == 2
    err = capsys.readouterr().err
    assert "checksum mismatch" in err and "--archive" in err
    assert not root.exists() and list(root.parent.iterdir()) == []


def test_no_server_at_all_says_how_to_get_the_data_by_hand(tmp_path, capsys):
    assert download.main(["--root", str(tmp_path / "g"), "--url", "http://127.0.0.1:9/genres.tar.gz"]) == 2
    err = capsys.readouterr().err
    assert "no connection" in err and "data.source.root" in err


@pytest.mark.parametrize("kind", ["tar", "zip"])
def test_an_archive_the_user_has(tmp_path, kind):
    root = tmp_path / "gtzan"
    genre_root = download.install(root, archive=_archive(tmp_path, kind))
    assert genre_root == root / ("genres" if kind == "tar" else "Data/genres_original")
    dm = _fault_filtered(root)
    dm.setup("fit")  # the training code finds the tracks under the extracted layout
    assert dm.class_names == GENRES


def test_fault_filtered_split_follows_the_lists_and_drops_unlisted_tracks(tmp_path):
    root = _gtzan_like(tmp_path / "gtzan")
    dm = _fault_filtered(root)
    dm.setup("fit")
    split_of = fault_filtered_split()
    table = dm.table
    for name in ("train", "val", "test"):
        tracks = {table.track_ids[t] for t in table.track_index[dm.indices[name]]}
        expected = {t for t, s in split_of.items() if s == name and t.split(".")[0] in GENRES}
        assert tracks == expected
    used = sum(len(dm.indices[n]) for n in ("train", "val", "test"))
    assert used == len(table) - 2  # the 2 unlisted tracks (1 clip each) are left out


def test_fault_filtered_split_on_a_corpus_that_is_not_gtzan(tmp_path):
    for genre in GENRES:
        write_wav(tmp_path / genre / f"{genre}-song-1.wav", np.zeros(22050))
    dm = _fault_filtered(tmp_path)
    with pytest.raises(UserError, match="does not look like GTZAN"):
        dm.setup("fit")


def test_fault_filtered_split_with_listed_tracks_missing(tmp_path, caplog):
    root = _gtzan_like(tmp_path / "gtzan")
    listed = next(p for p in (root / "jazz").iterdir() if p.stem in fault_filtered_split())
    listed.unlink()
    caplog.set_level("WARNING")
    dm = _fault_filtered(root)
    dm.setup("fit")  # a partial copy: the published assignment of the tracks present, and a warning
    assert f"1 of the 178 listed tracks for genres {GENRES} are not on disk (e.g. {listed.stem})" in caplog.text
    split_of = fault_filtered_split()
    for name in ("train", "val", "test"):
        tracks = {dm.table.track_ids[t] for t in dm.table.track_index[dm.indices[name]]}
        assert tracks == {t for t, s in split_of.items() if s == name and t.split(".")[0] in GENRES} - {listed.stem}


@pytest.mark.slow
def test_download_then_train_on_the_fault_filtered_split_with_no_other_step(tmp_path):
    from tests.conftest import run_cli

    archive = _archive(tmp_path, "tar")
    outputs = tmp_path / "outputs"
    fetched = run_cli(["--archive", str(archive)], outputs, module="genre_style.download")
    assert fetched.returncode == 0, fetched.stderr
    trained = run_cli(
        [
            "model=dsae",
            "gamma=0.9",
            "data.split.mode=fault_filtered",
            "data.source.genres=[jazz,metal]",
            "trainer.max_epochs=1",
            "data.store.workers=1",
            "trainer.enable_progress_bar=false",
        ],
        outputs,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "final figures" in trained.stdout + trained.stderr
    # the report puts fault-filtered runs in their own section
    reported = run_cli([], outputs, module="genre_style.report")
    assert reported.returncode == 0, reported.stderr
    assert (
        "## artist-filtered split (no artist in two splits: GTZAN's fault-filtered benchmark)"
        in (outputs / "report" / "report.md").read_text()
    )


def test_experiment_gtzan10_is_all_genres_on_the_fault_filtered_split():
    from hydra import compose, initialize_config_dir

    from tests.conftest import REPO

    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(config_name="train", overrides=["experiment=gtzan10"])
    assert cfg.data.source.genres == "all" and cfg.data.split.mode == "fault_filtered"
    assert cfg.model._target_.endswith("DeepSoftmaxAutoencoder")


@pytest.mark.slow  # a local HTTP server (the `mirror` fixture): the full suite runs it, `make test-fast` leaves it out
def test_a_folder_it_did_not_fill_is_left_alone_unless_forced(tmp_path, mirror, capsys):
    """The user's own files are never overwritten by default; `--force` replaces the folder, and fetches again even
    where GTZAN already is."""
    served, url, hits = mirror
    archive = _archive(tmp_path, "tar")
    (served / "genres.tar.gz").write_bytes(archive.read_bytes())
    args = ["--url", f"{url}/genres.tar.gz", "--md5", ""]
    root = tmp_path / "data" / "gtzan"
    (root / "mine").mkdir(parents=True)
    (root / "mine" / "notes.txt").write_text("keep me")
    assert download.main(["--root", str(root), *args]) == 2
    err = capsys.readouterr().err
    assert f"{root} exists and is not empty, but was not filled by this command" in err and "Traceback" not in err
    assert (root / "mine" / "notes.txt").read_text() == "keep me" and hits == []  # nothing fetched, nothing touched
    assert download.main(["--root", str(root), *args, "--force"]) == 0
    assert not (root / "mine").exists() and (root / download.MARKER).is_file() and len(hits) == 1
    assert sorted(p.name for p in (root / "genres").iterdir()) == sorted(GENRES)
    assert download.main(["--root", str(root), *args]) == 0 and len(hits) == 1  # there already: not fetched
    assert download.main(["--root", str(root), *args, "--force"]) == 0 and len(hits) == 2  # forced: fetched again
    assert sorted(p.name for p in (root / "genres").iterdir()) == sorted(GENRES)
