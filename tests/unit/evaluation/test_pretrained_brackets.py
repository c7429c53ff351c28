"""Named pretrained brackets (evaluation/pretrained_brackets.py): frozen musicnn and any HEAR-API module scored beside
the model on the same songs, clips and splits; a missing package is a note, a bad name one line."""

from __future__ import annotations

import importlib.util
import logging
import sys
import textwrap

import numpy as np
import pytest
import torch

from genre_style.data.audio import ClipSpec, load_mono
from genre_style.errors import UserError
from genre_style.evaluation import pretrained_brackets as pb
from genre_style.evaluation.brackets import EMBEDDINGS, evaluate_folder
from genre_style.inference import Embedder, Preprocessing
from tests.pretrained import needs_musicnn

TINY_HEAR = """
    import torch

    class Model(torch.nn.Module):
        sample_rate = 8000
        scene_embedding_size = timestamp_embedding_size = 3

    def load_model(model_file_path=""):
        return Model()

    def get_scene_embeddings(audio, model):
        return torch.stack([audio.mean(1), audio.std(1), audio.abs().amax(1)], 1)

    def get_timestamp_embeddings(audio, model):
        raise NotImplementedError
"""


def _embedder() -> Embedder:
    from genre_style.models.two_layer import TwoLayerNet

    torch.manual_seed(0)
    genres = ["classical", "jazz", "pop", "metal"]
    spec = ClipSpec()  # the paper's: 20000-sample clips at 22.05 kHz, 3 a 3-s song
    model = TwoLayerNet(input_shape=spec.feature_shape, num_classes=4, class_names=genres, embedding_dim=8)
    return Embedder(model, genres, Preprocessing(spec))


@pytest.fixture
def tiny_hear(tmp_path, monkeypatch):
    (tmp_path / "tiny_hear.py").write_text(textwrap.dedent(TINY_HEAR))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "tiny_hear"
    sys.modules.pop("tiny_hear", None)


def test_names_parse_and_bad_ones_are_one_line():
    assert pb.parse("musicnn").name == "musicnn MSD_musicnn penultimate"
    assert pb.parse("musicnn:MTT_vgg").name == "musicnn MTT_vgg pool5"
    assert pb.parse("musicnn:MSD_musicnn:taggram").args == ("MSD_musicnn", "taggram")
    assert pb.parse("hear:some.module:/models/x.ckpt").args == ("some.module", "/models/x.ckpt")
    assert pb.parse_all("none") == [] and pb.parse_all([]) == [] and len(pb.parse_all("musicnn, hear:m")) == 2
    with pytest.raises(UserError, match="unknown pretrained bracket 'openl3'"):
        pb.parse("openl3")
    with pytest.raises(UserError, match="MSD_vgg has no layer penultimate"):
        pb.parse("musicnn:MSD_vgg:penultimate")
    with pytest.raises(UserError, match="hear:no_such_module_here cannot be imported"):
        pb.load_hear(pb.parse("hear:no_such_module_here"))


@pytest.mark.slow  # in-process, but over 1.5 s: the full suite runs it, `make test-fast` leaves it out
def test_a_hear_module_is_scored_beside_the_model_on_the_same_clips(small_corpus, tmp_path, tiny_hear):
    name, result = evaluate_folder(
        _embedder(), small_corpus, splits=2, episodes=5, cache_dir=tmp_path, out_dir=tmp_path / "out", brackets=["hear:tiny_hear"]
    )
    assert list(result.per_split) == [*EMBEDDINGS, "hear tiny_hear"]
    assert result.n_clips == 24 * 3  # the model's clips: the module's are as long (in seconds), at its own rate
    table = (tmp_path / "out" / f"{name}.md").read_text()
    assert "| hear tiny_hear |" in table and "| model - hear tiny_hear |" in table  # paired differences
    assert f"downstream/{name}/hear_tiny_hear.../probe_clip_acc".replace("...", "") in result.metrics("downstream/" + name)
    # each clip cut where the model's clip starts, at the module's rate and the model's clip duration
    spec = pb.clip_spec(pb.parse("hear:tiny_hear"), ClipSpec(), 8000)
    assert (spec.sample_rate, spec.segment_samples, spec.hop_samples) == (8000, 7256, 7256)
    (genre_table, values) = _bracket_rows("hear:tiny_hear", small_corpus)
    song = load_mono(small_corpus / "classical" / "classical.00000.wav", 8000)
    second_clip = song[7256 : 2 * 7256]
    assert genre_table.track_ids[0] == "classical.00000" and genre_table.track_index[1] == 0
    np.testing.assert_allclose(
        values[1], [second_clip.mean(), second_clip.std(ddof=1), np.abs(second_clip).max()], rtol=1e-4, atol=1e-6
    )


def _bracket_rows(name, root):
    from genre_style.evaluation.brackets import labelled_table

    table, key = labelled_table(root, ["classical", "jazz", "pop", "metal"], ClipSpec(), None)
    return table, pb.embed(pb.parse(name), root, table, key, ClipSpec(), None)


def test_a_bracket_clip_past_the_songs_end_is_moved_back_to_end_there():
    model, musicnn = ClipSpec(), pb.clip_spec(pb.parse("musicnn"), ClipSpec())
    # a 3-s song at 16 kHz: the model's three 0.9-s clips start at 0, 0.907 and 1.814 s; musicnn's 2.976-s patch fits once
    starts = pb.clip_starts(3, 48000, musicnn, model)
    assert starts.tolist() == [0, 384, 384]  # 14512 and 29025 moved back to 48000 - 47616
    assert pb.clip_starts(3, 160000, musicnn, model).tolist() == [0, 14512, 29025]  # a 10-s song: the model's starts


def test_a_missing_musicnn_package_is_a_note_not_a_failure(small_corpus, tmp_path, monkeypatch, caplog):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "musicnn" else find_spec(name, *a))
    with caplog.at_level(logging.INFO, logger=pb.__name__):
        name, result = evaluate_folder(_embedder(), small_corpus, splits=2, episodes=5, cache_dir=tmp_path, out_dir=tmp_path)
    assert list(result.per_split) == list(EMBEDDINGS)  # the default bracket left out, the rest scored
    (note,) = [r.getMessage() for r in caplog.records if "left out" in r.getMessage()]
    assert "musicnn MSD_musicnn penultimate bracket is left out" in note and "pip install --no-deps musicnn" in note
    assert note in (tmp_path / f"{name}.md").read_text()


@pytest.mark.slow  # in-process, but over 1.5 s: the full suite runs it, `make test-fast` leaves it out
@needs_musicnn
def test_frozen_musicnn_is_shown_by_default_its_outputs_cached(small_corpus, tmp_path, caplog):
    """musicnn's 3-s patches start where the model's 0.9-s clips do (moved back at a song's end): every clip of the
    model has one. A second evaluation reuses the cached musicnn outputs."""
    with caplog.at_level(logging.INFO, logger=pb.__name__):
        _, first = evaluate_folder(_embedder(), small_corpus, ["classical", "jazz"], splits=2, episodes=5, cache_dir=tmp_path)
    assert list(first.per_split) == [*EMBEDDINGS, "musicnn MSD_musicnn penultimate"]
    assert first.n_clips == 36  # the model's three clips a song, each with a musicnn patch
    assert any("36 clips computed" in r.getMessage() for r in caplog.records)
    (cached,) = (tmp_path / "frozen").glob("bracket-clips-*.npy")
    assert np.load(cached).shape == (36, 200)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=pb.__name__):
        _, second = evaluate_folder(_embedder(), small_corpus, ["classical", "jazz"], splits=2, episodes=5, cache_dir=tmp_path)
    assert any("cached outputs reused" in r.getMessage() for r in caplog.records)
    musicnn = "musicnn MSD_musicnn penultimate"
    assert second.per_split[musicnn]["probe_clip_acc"] == first.per_split[musicnn]["probe_clip_acc"]


def test_a_bad_bracket_name_is_one_line_before_anything_is_read(small_corpus, tmp_path, capsys):
    from hydra import compose, initialize_config_dir

    from genre_style.config_checks import validate_config
    from genre_style.downstream import main
    from tests.conftest import REPO

    code = main(["no-such-model.ckpt", str(small_corpus), "--brackets", "musicnn,openl3", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert code != 0 and "unknown pretrained bracket 'openl3'" in err and "Traceback" not in err
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = compose(
            config_name="train",
            overrides=[
                f"paths.output_root={tmp_path}",
                f"paths.output_dir={tmp_path}/run",
                "data=synthetic",
                f"evaluation.downstream=[{{root:'{small_corpus}'}}]",
                "evaluation.pretrained_brackets=[musicnn:MSD_vgg:penultimate]",
            ],
        )
    with pytest.raises(UserError, match="MSD_vgg has no layer penultimate"):
        validate_config(cfg)


def test_a_bracket_finds_the_songs_through_the_runs_named_source(small_corpus, tmp_path):
    """A run whose `data.source.kind` names a source that does not claim its root: the bracket asks that source for the
    songs (not the folder layout), and songs it cannot find are one line, not a KeyError."""
    from genre_style.data.clip_table import ClipTable
    from genre_style.data.corpus import SOURCES, Source, source
    from genre_style.data.gtzan import Track

    flat = tmp_path / "flat"  # every song in one folder as <genre>-<n>.wav: not GTZAN's layout
    flat.mkdir()
    for song in sorted(small_corpus.glob("*/*.wav"))[:2]:
        (flat / f"{song.parent.name}-{song.stem}.wav").write_bytes(song.read_bytes())

    @source("flat_for_test")
    class FlatSource(Source):
        def genres(self) -> list[str]:
            return sorted({p.stem.split("-")[0] for p in self.root.glob("*.wav")})

        def tracks(self, genres):
            return [
                Track(p, p.stem.split("-")[0], p.stem) for p in sorted(self.root.glob("*.wav")) if p.stem.split("-")[0] in genres
            ]

    try:
        tracks = FlatSource(flat).tracks(FlatSource(flat).genres())
        table = ClipTable(
            features=np.zeros((2, 1), np.float32),
            labels=np.zeros(2, np.int64),
            track_index=np.arange(2),
            genres=FlatSource(flat).genres(),
            track_ids=[t.track_id for t in tracks],
            track_labels=np.zeros(2, np.int64),
        )
        assert [t.path for t in pb._tracks(flat, table, "flat_for_test")] == [t.path for t in tracks]
        with pytest.raises(UserError, match="holds no genre folders"):
            pb._tracks(flat, table)  # read as a genre-folder layout: a one-line error, not a KeyError
        (flat / f"{tracks[1].track_id}.wav").unlink()
        with pytest.raises(UserError, match="cannot find 1 of the model's songs"):
            pb._tracks(flat, table, "flat_for_test")
    finally:
        SOURCES.pop("flat_for_test")
