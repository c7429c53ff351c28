"""The built-in synthetic corpus (genre_style/data/synthetic.py): written once, and never pulled from under a reader."""

from __future__ import annotations

from genre_style.data import synthetic
from genre_style.data.synthetic import SyntheticSpec, generate_corpus

SPEC = SyntheticSpec(genres=("classical", "metal"), tracks_per_genre=1, seconds=1.0)


def test_a_second_call_reuses_the_corpus_in_place(tmp_path):
    root = generate_corpus(tmp_path / "synthetic", SPEC, progress=False, workers=1)
    song = root / "classical" / "classical.00000.wav"
    before = song.stat().st_ino
    generate_corpus(root, SPEC, progress=False, workers=1)
    assert song.stat().st_ino == before


def test_a_corpus_another_run_wrote_meanwhile_is_kept_not_replaced(tmp_path, monkeypatch):
    """Runs started together on a new folder: the one that finishes second keeps the first one's corpus (which that
    run may be reading by now) instead of deleting it and renaming its own copy into place."""
    root = tmp_path / "synthetic"
    write_track = synthetic._write_track
    other: dict = {}

    def the_other_run_finishes_first(job: tuple) -> None:
        if not other:
            other["started"] = True
            generate_corpus(root, SPEC, progress=False, workers=1)  # the other run, start to finish
            other["song"] = (root / "classical" / "classical.00000.wav").stat().st_ino
        write_track(job)

    monkeypatch.setattr(synthetic, "_write_track", the_other_run_finishes_first)
    generate_corpus(root, SPEC, progress=False, workers=1)
    assert (root / "classical" / "classical.00000.wav").stat().st_ino == other["song"]
    assert not list(tmp_path.glob(".synthetic.*")), "the second run's staging copy is left behind"
