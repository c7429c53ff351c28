"""Content judged by notes: basic-pitch's ONNX model transcribes, mir_eval scores, the pitch Jaccard distance."""

from __future__ import annotations

import numpy as np
import pytest

from genre_style.errors import UserError
from genre_style.style_transfer import notes
from genre_style.style_transfer.notes import Notes, note_scores, pitch_jaccard_distance
from tests.transfer_extra import require_transfer_extra

require_transfer_extra()

SR = 22050
# A C major arpeggio over a held bass, 2 s.
SCORE = [(0, 72, 0.0, 0.45, 90), (0, 76, 0.5, 0.95, 90), (0, 79, 1.0, 1.45, 90), (0, 84, 1.5, 1.95, 90), (1, 48, 0.0, 1.9, 90)]


def _notes(rows: list[tuple[float, float, int]]) -> Notes:
    return Notes.from_events(rows)


def test_note_scores_count_onsets_and_pitches_not_offsets() -> None:
    reference = _notes([(0.0, 0.5, 60), (0.5, 1.0, 64), (1.0, 1.5, 67)])
    assert note_scores(reference, reference) == {"note_precision": 1.0, "note_recall": 1.0, "note_f1": 1.0}
    held = _notes([(0.02, 1.4, 60), (0.5, 0.6, 64), (1.0, 1.5, 67)])  # onsets within 50 ms, offsets anywhere
    assert note_scores(reference, held)["note_f1"] == 1.0
    late = _notes([(0.1, 0.5, 60), (0.5, 1.0, 64), (1.0, 1.5, 67), (1.0, 1.5, 72)])  # one late, one extra
    scores = note_scores(reference, late)
    assert scores["note_recall"] == pytest.approx(2 / 3) and scores["note_precision"] == pytest.approx(2 / 4)
    assert note_scores(reference, _notes([]))["note_f1"] == 0.0
    assert note_scores(_notes([]), _notes([]))["note_f1"] == 1.0


def test_pitch_jaccard_distance_is_cifkas_frame_measure() -> None:
    reference = _notes([(0.0, 1.0, 60)])
    estimate = _notes([(0.0, 0.5, 60), (0.0, 0.5, 64)])
    # 0-0.5 s: {60} vs {60, 64} -> 1 - 1/2; 0.5-1 s: {60} vs {} -> 1; 1-2 s: neither -> 0
    assert pitch_jaccard_distance(reference, estimate, 2.0) == pytest.approx((50 * 0.5 + 50 * 1.0) / 200)
    assert pitch_jaccard_distance(reference, reference, 2.0) == 0.0


@pytest.fixture(scope="module")
def renderings() -> dict[str, np.ndarray]:
    from genre_style.data import rendered

    soundfont = rendered.soundfont_path()
    up_a_tone = [(v, p + 2, s, e, vel) for v, p, s, e, vel in SCORE]
    return {
        "piano": rendered.render(SCORE, rendered.ENSEMBLES["piano"], 2.0, SR, soundfont, "piano"),
        "guitars": rendered.render(SCORE, rendered.ENSEMBLES["guitars"], 2.0, SR, soundfont, "guitars"),
        "piano, a tone up": rendered.render(up_a_tone, rendered.ENSEMBLES["piano"], 2.0, SR, soundfont, "piano"),
    }


def test_transcription_hears_the_score_and_the_same_notes_across_instruments(renderings: dict[str, np.ndarray]) -> None:
    score = Notes.from_events([(s, e, p) for _, p, s, e, _ in SCORE])
    piano = notes.transcribe(renderings["piano"], SR)
    assert note_scores(score, piano)["note_f1"] >= 0.8, (piano.pitches, piano.intervals)
    guitars = notes.notes_kept(piano, renderings["guitars"], SR)
    transposed = notes.notes_kept(piano, renderings["piano, a tone up"], SR)
    # the same notes on guitars keep far more than the same instrument a tone higher (measured: F1 0.5 against 0)
    assert guitars["note_f1"] >= transposed["note_f1"] + 0.3 and transposed["note_f1"] <= 0.2
    assert transposed["pitch_jaccard_dist"] > guitars["pitch_jaccard_dist"] + 0.2


def test_content_kept_adds_note_measures_beside_the_correlations(renderings: dict[str, np.ndarray]) -> None:
    from genre_style.style_transfer import scores

    piano = renderings["piano"]
    plain = scores.content_kept(piano, piano, SR)
    assert set(plain) == set(scores.CONTENT_MEASURES)
    with_notes = scores.content_kept(piano, piano, SR, notes.transcribe(piano, SR))
    assert set(with_notes) == {*scores.CONTENT_MEASURES, *scores.NOTE_MEASURES}
    assert with_notes["note_f1"] == 1.0 and with_notes["pitch_jaccard_dist"] == 0.0  # the same audio, the same notes


def test_missing_basic_pitch_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(notes, "available", lambda: False)
    with pytest.raises(UserError) as error:
        notes.check_available()
    assert "pip install --no-deps basic-pitch==0.4.0" in str(error.value)
