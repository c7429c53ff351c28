"""Encoders, front-ends and the classical baseline through the real entry point: real fits, a real MLflow store."""

from __future__ import annotations

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from tests.cli.test_train_cli import _artifacts
from tests.conftest import FAST_RUN, FULL_EVALUATION, run_cli, write_split_lists

pytestmark = pytest.mark.slow  # real processes (the CLI, servers): `make test-fast` leaves them out


def _only_run(out):
    client = MlflowClient(tracking_uri=f"sqlite:///{out / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])
    assert len(runs) == 1
    return client, runs[0]


@pytest.fixture(scope="module")
def dsae_cnn_and_logreg(tmp_path_factory, small_corpus):
    """A DSAE on the log-mel CNN (scored at its end on a downstream folder too) and the scikit-learn baseline."""
    out = tmp_path_factory.mktemp("encoders")
    cnn = run_cli(
        [
            *FAST_RUN,
            "features=logmel",
            "encoder=logmel_cnn",
            "model.recon_reduction=mean",
            "model.encoder.channels=[4,8]",
            "trainer.max_epochs=2",
            f"evaluation.downstream=[{{root:'{small_corpus}',genres:[jazz,pop,metal],name:three,splits:2,episodes:5}}]",
            *FULL_EVALUATION,  # its embedding metrics and decoder plots are read below
        ],
        out / "cnn",
    )
    assert cnn.returncode == 0, cnn.stderr[-3000:]
    logreg = run_cli([*FAST_RUN, *FULL_EVALUATION, "model=logreg", "features=stats"], out / "logreg")
    assert logreg.returncode == 0, logreg.stderr[-3000:]
    return out


def test_logreg_writes_the_same_metrics_and_plots_as_the_learned_models(dsae_cnn_and_logreg):
    client_cnn, cnn = _only_run(dsae_cnn_and_logreg / "cnn")
    client, logreg = _only_run(dsae_cnn_and_logreg / "logreg")
    assert logreg.info.status == "FINISHED"
    assert logreg.data.params["model"] == "LogisticRegressionBaseline"
    # system/* are MLflow's samples every 10 s: a run that took longer under load has some the other may lack.
    classifier_metrics = {
        k
        for k in cnn.data.metrics
        if not k.startswith(("system/", "final/downstream/")) and not any(w in k for w in ("recon", "/ce", "bottleneck"))
    }
    embedding = {k.replace("bottleneck", "hidden") for k in cnn.data.metrics if "bottleneck" in k}
    assert classifier_metrics | embedding <= set(logreg.data.metrics)  # test/acc, track_acc, f1_<genre>, probe/knn, ...
    assert len(client.get_metric_history(logreg.info.run_id, "val/acc")) == 1  # one epoch (one fit); the final is final/val/acc
    plots = {p for p in _artifacts(client, logreg.info.run_id) if p.startswith("plots/")}
    cnn_plots = {
        p.replace("bottleneck", "hidden")
        for p in _artifacts(client_cnn, cnn.info.run_id)
        if p.startswith("plots/") and not p.endswith(("interpolation.png", "latent_traversal.png"))
    }  # decoder plots
    assert cnn_plots <= plots


def test_a_conv_encoder_run_logs_its_encoder_and_front_end(dsae_cnn_and_logreg):
    client, run = _only_run(dsae_cnn_and_logreg / "cnn")
    p = run.data.params
    assert p["encoder"] == "LogMelCNN" and p["data.clips.features"] == "logmel"
    assert "plots/interpolation.png" in _artifacts(client, run.info.run_id)  # decoded maps drawn as images
    ckpt = client.download_artifacts(run.info.run_id, "checkpoints/best.ckpt", str(dsae_cnn_and_logreg))
    import torch

    state = torch.load(ckpt, weights_only=True)  # plain data: the encoder is a config dict, not a pickled object
    assert state["hyper_parameters"]["encoder"]["_target_"].endswith("LogMelCNN")
    assert list(state["hyper_parameters"]["input_shape"]) == [64, 79]


def test_embed_reads_a_conv_encoder_checkpoint(dsae_cnn_and_logreg, small_corpus, tmp_path):
    client, run = _only_run(dsae_cnn_and_logreg / "cnn")
    ckpt = client.download_artifacts(run.info.run_id, "checkpoints/best.ckpt", str(tmp_path))
    out = tmp_path / "emb.csv"
    result = run_cli([ckpt, str(small_corpus / "jazz"), "--out", str(out)], tmp_path, module="genre_style.embed")
    assert result.returncode == 0, result.stderr[-3000:]
    import pandas as pd

    from genre_style.inference import Embedder

    clips, tracks = pd.read_csv(out), pd.read_csv(tmp_path / "emb_tracks.csv")
    songs = sorted((small_corpus / "jazz").glob("*.wav"))
    assert sorted(tracks["path"]) == [str(p) for p in songs] and len(clips) == 3 * len(songs)  # 3 s songs, 3 clips each
    embedder = Embedder.from_checkpoint(ckpt)
    emb = [c for c in clips.columns if c.startswith("emb_")]
    assert len(emb) == embedder.model.embedding_dim
    for song in songs:  # each row holds its own clip's embedding, cut here by hand from the file
        rows = clips[clips["path"] == str(song)].sort_values("clip")
        np.testing.assert_allclose(rows[emb].to_numpy(), _clip_embeddings(embedder, song), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(rows["start_s"], np.arange(len(rows)) * embedder.spec.hop_samples / 22050, atol=1e-3)
    np.testing.assert_allclose(clips[[c for c in clips.columns if c.startswith("prob_")]].sum(axis=1), 1.0, atol=1e-5)


def _clip_embeddings(embedder, path) -> np.ndarray:
    """A song's clip embeddings from consecutive windows cut here, not by `inference`: what embed promises per row."""
    from genre_style.data.audio import load_mono

    signal, spec = load_mono(path, embedder.spec.sample_rate), embedder.spec
    starts = range(0, len(signal) - spec.segment_samples + 1, spec.hop_samples)
    clips = np.stack([signal[s : s + spec.segment_samples] for s in starts])
    return embedder.outputs(embedder.preprocessing.features(clips))[0]


def test_experiment_best_composes_and_runs_a_short_fit(tmp_path):
    fast = [a for a in FAST_RUN if not a.startswith("trainer.max_epochs")]
    result = run_cli(["experiment=best", *fast, "trainer.max_epochs=1", "model.encoder.channels=[4,8]"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    _, run = _only_run(tmp_path)
    p = run.data.params
    assert run.data.tags["experiment"] == "best" and p["model.augment.time_shift"] == "True"
    assert p["model.optimizer"] == "AdamW" and p["model.scheduler"] == "CosineAnnealingLR"
    assert "final/test/track_acc" in run.data.metrics


def test_waveform_front_end_trains_the_sample_cnn(tmp_path):
    result = run_cli(
        [
            *FAST_RUN,
            "features=waveform",
            "encoder=sample_cnn",
            "model=two_layer",
            "model.embedding_dim=16",
            "model.encoder.channels=[4,8,8]",
            "trainer.max_epochs=1",
            "evaluation.embedding_metrics=false",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    _, run = _only_run(tmp_path)
    assert run.data.params["data.clips.features"] == "waveform" and "test/acc" in run.data.metrics


def test_a_seed_sweep_is_reported_with_intervals_and_paired_differences(tmp_path):
    """One multirun: two configurations x two seeds; the report groups them by seed and pairs them."""
    fast = [a for a in FAST_RUN if not a.startswith("trainer.max_epochs")]
    sweep = run_cli(
        [
            "-m",
            "model=logreg,two_layer",
            "features=stats",
            "seed=1,2",
            "trainer.max_epochs=2",
            "evaluation.embedding_metrics=false",
            *fast,
        ],
        tmp_path,
    )
    assert sweep.returncode == 0, sweep.stderr[-3000:]
    report = run_cli(
        ["--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}", "--out", str(tmp_path / "report")],
        tmp_path,
        module="genre_style.report",
    )
    assert report.returncode == 0, report.stderr[-3000:]
    text = (tmp_path / "report" / "report.md").read_text()
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])
    logreg = sorted(r.data.metrics["test/acc"] for r in runs if "Logistic" in r.data.params["model"])
    assert len(logreg) == 2
    from genre_style.evaluation.stats import summarize

    assert summarize(logreg).format() in text  # e.g. "62.5 ± 3.1 [34.4, 90.6] (n=2)"
    assert "Paired comparisons on shared seeds" in text and "(n=2)" in text


@pytest.mark.slow
def test_the_report_keeps_protocols_apart_and_leads_with_the_artist_filtered_split(tmp_path):
    """Two seed sweeps of the baseline, one per protocol: a section each, the artist-filtered one first; and
    the baseline's run is a model like any other: `predict` reads it by run id."""
    lists = write_split_lists(tmp_path / "lists")
    common = ["model=logreg", "features=stats", "seed=1,2", "evaluation.embedding_metrics=false", *FAST_RUN]
    for split in (["data.split.mode=track"], ["data.split.mode=fault_filtered", f"data.split.lists={lists}"]):
        sweep = run_cli(["-m", *common, *split], tmp_path)
        assert sweep.returncode == 0, sweep.stderr[-3000:]
    assert "8 of the 32 listed tracks" in sweep.stdout + sweep.stderr  # the partial copy's warning
    report = run_cli(["--out", str(tmp_path / "report")], tmp_path, module="genre_style.report")
    assert report.returncode == 0, report.stderr[-3000:]
    headings = [line for line in (tmp_path / "report" / "report.md").read_text().splitlines() if line.startswith("## Repeated")]
    assert len(headings) == 2 and "artist-filtered split" in headings[0] and "track split" in headings[1], headings
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])[0]
    song = next((tmp_path / "data" / "synthetic" / "jazz").glob("*.wav"))
    predicted = run_cli([run.info.run_id, str(song)], tmp_path, module="genre_style.predict")
    assert predicted.returncode == 0, predicted.stderr[-3000:]
    assert predicted.stdout.splitlines()[1].split(",")[1] in {"classical", "jazz", "pop", "metal"}


def test_the_hear_api_loads_a_trained_checkpoint(dsae_cnn_and_logreg, small_corpus, tmp_path):
    import torch

    import genre_style.hear as hear
    from genre_style.data.audio import load_mono

    client, run = _only_run(dsae_cnn_and_logreg / "cnn")
    model = hear.load_model(client.download_artifacts(run.info.run_id, "checkpoints/best.ckpt", str(tmp_path)))
    song = next((small_corpus / "jazz").glob("*.wav"))
    audio = torch.as_tensor(load_mono(song, model.sample_rate))[None]
    scene = hear.get_scene_embeddings(audio, model)
    assert scene.shape == (1, model.scene_embedding_size) == (1, 64)
    by_hand = _clip_embeddings(model.embedder, song)  # the mean of its consecutive clips', cut here (not by embed_audio)
    assert len(by_hand) == 3
    np.testing.assert_allclose(scene[0].numpy(), by_hand.mean(axis=0), rtol=1e-4, atol=1e-5)


def test_downstream_at_the_end_of_training_is_logged_and_reported(dsae_cnn_and_logreg, tmp_path):
    client, run = _only_run(dsae_cnn_and_logreg / "cnn")
    metrics = run.data.metrics
    for embedding in ("model", "random_weights", "features_stats"):
        for metric in ("probe_clip_acc", "probe_song_acc", "knn_acc", "proto_1shot_acc", "proto_5shot_acc", "same_song_map"):
            assert 0 <= metrics[f"final/downstream/three/{embedding}/{metric}"] <= 1, (embedding, metric)
    assert {"downstream/three.md", "downstream/three.json"} <= set(_artifacts(client, run.info.run_id))
    report = run_cli(["--out", str(tmp_path / "report")], dsae_cnn_and_logreg / "cnn", module="genre_style.report")
    assert report.returncode == 0, report.stderr[-3000:]
    text = (tmp_path / "report" / "report.md").read_text()
    assert "Frozen embeddings on other folders" in text and "| three |" in text


def test_the_downstream_cli_scores_a_run_and_logs_into_it(dsae_cnn_and_logreg, small_corpus):
    client, run = _only_run(dsae_cnn_and_logreg / "logreg")
    result = run_cli(
        [run.info.run_id, str(small_corpus), "--genres", "classical,jazz", "--splits", "2", "--episodes", "5", "--name", "two"],
        dsae_cnn_and_logreg / "logreg",
        module="genre_style.downstream",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "| model - features=stats |" in result.stdout and "| model - random weights |" in result.stdout
    logged = client.get_run(run.info.run_id).data.metrics
    assert "final/downstream/two/model/proto_5shot_acc" in logged
    assert (dsae_cnn_and_logreg / "logreg" / "downstream" / "two.json").is_file()  # no --out: under the outputs folder


def test_downstream_out_and_no_log_write_the_tables_there_and_leave_the_run_alone(dsae_cnn_and_logreg, small_corpus, tmp_path):
    import json

    client, run = _only_run(dsae_cnn_and_logreg / "logreg")
    before = client.get_run(run.info.run_id).data.metrics
    args = [run.info.run_id, str(small_corpus), "--genres", "pop,metal", "--splits", "2", "--episodes", "5", "--name", "quiet"]
    result = run_cli(
        [*args, "--out", str(tmp_path / "tables"), "--no-log"], dsae_cnn_and_logreg / "logreg", module="genre_style.downstream"
    )
    assert result.returncode == 0, result.stderr[-3000:]
    table = (tmp_path / "tables" / "quiet.md").read_text()
    printed = [line for line in result.stdout.splitlines() if line.startswith("|")]
    assert "| model - random weights |" in table and printed and all(line in table for line in printed)  # what it printed
    figures = json.loads((tmp_path / "tables" / "quiet.json").read_text())
    assert figures["name"] == "quiet" and figures["root"] == str(small_corpus)
    assert not (dsae_cnn_and_logreg / "logreg" / "downstream" / "quiet.md").exists()
    after = client.get_run(run.info.run_id)
    assert after.data.metrics == before and not any("quiet" in k for k in after.data.metrics)
    assert "downstream/quiet.md" not in _artifacts(client, run.info.run_id) and "logged to run" not in result.stdout


def test_balanced_class_weights_reach_the_baselines_fit(tmp_path):
    """`model.class_weight=balanced` is scikit-learn's: on an unbalanced train split it changes the fitted model."""
    import torch

    lists = tmp_path / "lists"
    lists.mkdir()
    genres = ["classical", "jazz", "pop", "metal"]
    train = [f"{g}/{g}.{n:05d}.wav" for g in genres for n in range(4 if g == "classical" else 2)]  # 4 + 2 + 2 + 2 songs
    (lists / "train.txt").write_text("\n".join(train))
    (lists / "valid.txt").write_text("\n".join(f"{g}/{g}.00004.wav" for g in genres))
    (lists / "test.txt").write_text("\n".join(f"{g}/{g}.00005.wav" for g in genres))
    common = [
        *(a for a in FAST_RUN if not a.startswith("logger.")),
        "model=logreg",
        "features=stats",
        "logger=none",
        "data.split.mode=fault_filtered",
        f"data.split.lists={lists}",
    ]
    weights = []
    for name, extra in (("plain", []), ("balanced", ["model.class_weight=balanced"])):
        result = run_cli([*common, *extra], tmp_path / name)
        assert result.returncode == 0, result.stderr[-3000:]
        state = torch.load(next((tmp_path / name).rglob("best.ckpt")), weights_only=False)["state_dict"]
        weights.append(state["classifier.weight"])
    assert not torch.equal(*weights)
