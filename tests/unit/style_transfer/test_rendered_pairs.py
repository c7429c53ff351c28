"""Transfers scored against the truth on rendered pairs: LSD to the true target, a judge's style distance, notes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.transfer_extra import require_transfer_extra

require_transfer_extra()

from genre_style.data.rendered import RenderSpec, render_corpus  # noqa: E402
from genre_style.style_transfer import rendered_pairs as rp  # noqa: E402

SR = 22050


def _midi(path: Path, root: int) -> Path:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    for program, offset in ((0, 0), (32, -24)):
        instrument = pretty_midi.Instrument(program=program)
        for i, step in enumerate((0, 4, 7, 12, 7, 4, 0, 7)):
            instrument.notes.append(pretty_midi.Note(velocity=90, pitch=root + step + offset, start=0.3 * i, end=0.3 * i + 0.25))
        midi.instruments.append(instrument)
    midi.write(str(path))
    return path


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory):
    """(the corpus's root, its RenderSpec, the corpus) of a tiny rendered corpus."""
    folder = tmp_path_factory.mktemp("midi")
    for i in range(6):
        _midi(folder / f"tune{i}.mid", 60 + i)
    spec = RenderSpec(
        chorales=0, midi=(str(folder),), seconds=2.5, styles=("piano", "strings", "organ", "saxes"), held_out=("saxes",),
        split_sizes=(0.34, 0.33, 0.33),
    )  # fmt: skip
    root = tmp_path_factory.mktemp("rendered")
    return root, spec, render_corpus(root, spec, progress=False, workers=1)


@pytest.fixture(scope="module")
def corpus(rendered):
    return rendered[2]


def test_pairs_cycle_target_styles_over_test_pieces_with_another_piece_as_style(corpus) -> None:
    pairs = rp.rendered_pairs(corpus, "test", 8, seed=0)
    test_pieces = set(corpus.split_pieces("test"))
    assert len(pairs) == 8 and {p.target_style for p in pairs} == set(corpus.styles)
    for pair in pairs:
        assert pair.piece in test_pieces and pair.style_piece in test_pieces and pair.style_piece != pair.piece
        assert pair.content_style != pair.target_style
        assert pair.content.is_file() and pair.style.is_file() and pair.target.is_file()
        assert pair.held_out == (pair.target_style == "saxes")
    assert rp.rendered_pairs(corpus, "test", 8, seed=0) == pairs  # seeded


def test_a_benchmark_finds_the_corpus_it_is_told_and_never_renders_one(rendered, tmp_path) -> None:
    from dataclasses import replace

    from genre_style.data.rendered import find_corpus
    from genre_style.errors import UserError

    root, spec, corpus = rendered
    assert find_corpus(root, spec).key == corpus.key
    written = sorted(root.rglob("*"))
    for where, settings in ((tmp_path, spec), (root, replace(spec, held_out=())), (root, replace(spec, seconds=3.0))):
        with pytest.raises(UserError, match="no complete rendered corpus with these settings"):
            find_corpus(where, settings)
    assert not any(tmp_path.iterdir()) and sorted(root.rglob("*")) == written  # refused, nothing rendered
    with pytest.raises(UserError, match="--pairs 0: nothing to score"):
        rp.rendered_pairs(corpus, "test", 0)


def test_lsd_is_zero_for_the_target_at_any_level_and_grows_with_the_style_change(corpus) -> None:
    import soundfile as sf

    piece = corpus.split_pieces("test")[0]
    target, _ = sf.read(corpus.path("strings", piece), dtype="float32")
    organ, _ = sf.read(corpus.path("organ", piece), dtype="float32")
    assert rp.log_spectral_distance(target, target, SR) == pytest.approx(0.0, abs=1e-6)
    assert rp.log_spectral_distance(0.3 * target, target, SR) == pytest.approx(0.0, abs=1e-3)  # power-normalised
    assert rp.log_spectral_distance(organ, target, SR) > 5.0
    assert rp.cosine_distance(np.array([1.0, 0.0]), np.array([2.0, 0.0])) == pytest.approx(0.0)
    assert rp.cosine_distance(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):
    """experiment=best's DSAE (untrained: the mechanics, not the figures) as the transfer model, another seed the judge."""
    from genre_style.inference import Embedder
    from tests import checkpoints

    folder = tmp_path_factory.mktemp("models")
    made = []
    for seed in (0, 1):
        model, spec = checkpoints.from_experiment("best", folder / str(seed))
        made.append(Embedder.from_checkpoint(checkpoints.save(model, spec, folder / f"{seed}.ckpt", seed=seed)))
    return made


@pytest.mark.slow  # transcribes and transfers 4 pairs with 5 methods: ~70 s
def test_every_entry_is_scored_on_the_same_pairs_against_the_truth(corpus, models, tmp_path: Path) -> None:
    from genre_style.style_transfer import notes

    transfer, judge = models
    pairs = rp.rendered_pairs(corpus, "test", 4, seed=0)
    entries = [e for e in rp.ENTRIES if e[1] in ("content", "style", "target", "equalise")]
    entries.append(("latent, strength 1", "latent", {"strength": 1.0, "equalise": 0.0}))
    table = rp.run_rendered_pairs(transfer, judge, pairs, tmp_path, entries, note_content=notes.available(), progress=False)
    assert list(table.values) == [e[0] for e in entries] and table.n_pairs() == 4
    values = table.values
    for pair in pairs:
        assert values["true target"]["lsd"][pair.name] == pytest.approx(0.0, abs=1e-6)
        assert values["true target"]["style_dist"][pair.name] == pytest.approx(0.0, abs=1e-5)
        assert values["copy content"]["lsd"][pair.name] > 1.0  # another style: far from the target
        assert values["copy content"]["chroma_corr"][pair.name] == pytest.approx(1.0)
        assert (tmp_path / "equalise__baseline_" / f"{pair.name.replace(':', '__')}.wav").is_file()
    if notes.available():
        assert all(v == 1.0 for v in values["copy content"]["note_f1"].values())
    held = table.subset(held_out=True)
    assert held.n_pairs() == sum(p.held_out for p in pairs) >= 1
    assert table.subset(held_out=False).n_pairs() == 4 - held.n_pairs()
    text = table.markdown()
    assert "| true target | 0.00" in text and "| latent, strength 1 - copy content |" in text
    assert "| equalise (baseline) - copy content |" in text and "lsd (lower better)" in text
