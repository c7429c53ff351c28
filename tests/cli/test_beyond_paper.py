"""Beyond the paper: embedding metrics, song-level scores, front-ends, the paper experiment, report, embed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from genre_style.data.audio import ClipSpec, clip_features
from genre_style.evaluation.embedding_metrics import embedding_scores, track_level
from tests.conftest import FAST_RUN, FULL_EVALUATION, run_cli, write_wav


def test_embedding_scores_tell_separable_from_random():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 50)
    centres = 5 * rng.standard_normal((4, 8))
    separable = centres[labels] + 0.3 * rng.standard_normal((200, 8))
    noise = rng.standard_normal((200, 8))
    good = embedding_scores(separable[::2], labels[::2], {"test": (separable[1::2], labels[1::2])}, "z")
    bad = embedding_scores(noise[::2], labels[::2], {"test": (noise[1::2], labels[1::2])}, "z")
    assert good["test/knn_acc_z"] == 1.0 and good["test/probe_acc_z"] == 1.0 and good["test/silhouette_z"] > 0.5
    assert bad["test/knn_acc_z"] < 0.5 and abs(bad["test/silhouette_z"]) < 0.1


def test_track_level_averages_clip_logits_per_song():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [0.0, 1.5], [3.0, 0.0], [0.0, 0.1]])
    labels = np.array([0, 0, 0, 1, 1])
    tracks = np.array([7, 7, 7, 9, 9])
    true, predicted = track_level(logits, labels, tracks)
    # song 7: mean logits (0.67, 0.83) -> class 1 although one clip says 0; song 9: (1.5, 0.05) -> 0
    assert true.tolist() == [0, 1] and predicted.tolist() == [1, 0]


@pytest.mark.parametrize(
    "front_end,shape",
    [("raw_pool", (500,)), ("logmel", (40, 20)), ("mfcc", (20, 20)), ("waveform", (20000,)), ("stats", (2 * (20 + 40),))],
)
def test_front_ends_give_one_fixed_size_array_per_clip(front_end, shape):
    spec = ClipSpec(features=front_end)
    clips = 0.1 * np.random.default_rng(0).standard_normal((3, 20000)).astype(np.float32)
    features = clip_features(clips, spec)
    assert spec.feature_shape == shape  # maps keep their (bands, frames) layout for conv encoders
    assert features.shape == (3, int(np.prod(shape))) == (3, spec.feature_dim) and np.isfinite(features).all()


def test_stats_are_the_mean_and_sd_over_time_of_mfcc_and_logmel():
    import librosa

    spec = ClipSpec(features="stats", n_fft=1024, frame_hop=512, n_mels=16, n_mfcc=5)
    clips = 0.1 * np.random.default_rng(1).standard_normal((2, 20000)).astype(np.float32)
    mel = librosa.power_to_db(
        librosa.feature.melspectrogram(y=clips, sr=22050, n_fft=1024, hop_length=512, n_mels=16), ref=1.0, top_db=None
    )
    both = np.concatenate([librosa.feature.mfcc(S=mel, n_mfcc=5), mel], axis=1)
    expected = np.concatenate([both.mean(axis=2), both.std(axis=2)], axis=1)
    np.testing.assert_allclose(clip_features(clips, spec), expected, rtol=1e-4, atol=1e-3)


@pytest.mark.slow
def test_a_spectral_front_end_trains_with_its_own_input_size(tmp_path):
    result = run_cli([*FAST_RUN, "features=mfcc", "model=two_layer", "trainer.max_epochs=1"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])[0]
    assert run.data.params["data.clips.features"] == "mfcc" and "test/acc" in run.data.metrics
    ckpt = client.download_artifacts(run.info.run_id, "checkpoints/best.ckpt", str(tmp_path))
    import torch

    # Plain data only (no Hydra object pickled with the hyperparameters): loads without running code.
    assert torch.load(ckpt, weights_only=True)["state_dict"]["encoder.net.0.weight"].shape == (128, 400)


@pytest.fixture(scope="module")
def paper_runs(tmp_path_factory):
    """experiment=paper as one multirun (all three models), plus a track-split DSAE, on the small corpus."""
    out = tmp_path_factory.mktemp("paper")
    fast = [a for a in FAST_RUN if not a.startswith("trainer.max_epochs")] + ["trainer.max_epochs=2", *FULL_EVALUATION]
    paper = run_cli(["-m", "experiment=paper", *fast], out)
    assert paper.returncode == 0, paper.stderr[-3000:]
    honest = run_cli(["experiment=paper_track_split", "model=dsae", *fast], out)
    assert honest.returncode == 0, honest.stderr[-3000:]
    return out


@pytest.mark.slow
def test_paper_experiment_trains_the_three_models_on_the_papers_protocol(paper_runs):
    client = MlflowClient(tracking_uri=f"sqlite:///{paper_runs / 'mlflow.db'}")
    runs = client.search_runs([client.get_experiment_by_name("genre-style").experiment_id], "tags.experiment = 'paper'")
    assert sorted(r.data.params["model"] for r in runs) == ["Autoencoder", "DeepSoftmaxAutoencoder", "TwoLayerNet"]
    for run in runs:
        p = run.data.params
        settings = (p["data.split.mode"], p["data.clips.pool"], p["data.clips.clips_per_track"], p["dropout"])
        assert settings == ("segment", "40", "20", "0.1")
        assert p.get("gamma") == ("0.9" if p["model"] == "DeepSoftmaxAutoencoder" else None)  # only where it is used
    dsae = next(r for r in runs if r.data.params["model"] == "DeepSoftmaxAutoencoder")
    metrics = dsae.data.metrics
    for key in (
        "test/track_acc",
        "test/silhouette_bottleneck",
        "test/knn_acc_bottleneck",
        "test/probe_acc_bottleneck",
        "test/knn_acc_raw",
        "test/probe_acc_logits",
        "val/knn_acc_bottleneck",
    ):
        assert f"final/{key}" in metrics, key
    artifacts = {a.path for a in client.list_artifacts(dsae.info.run_id, "plots")}
    assert {"plots/confusion_matrix_tracks.png", "plots/interpolation.png"} <= artifacts


@pytest.mark.slow
def test_report_puts_both_tables_beside_the_papers_numbers_for_each_protocol(paper_runs, tmp_path):
    result = run_cli(["--out", str(tmp_path / "report")], paper_runs, module="genre_style.report")
    assert result.returncode == 0, result.stderr
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "random clip split (the paper's protocol" in markdown and "track split (no song in two splits" in markdown
    assert "Table 1" in markdown and "94.9 / 64.1 / 65.3" in markdown and "52.0 / 38.1 / 36.4" in markdown
    assert "Table 2" in markdown and "0.783 / 0.775 / 0.779" in markdown
    assert "Embeddings in numbers" in markdown
    html = (tmp_path / "report" / "report.html").read_text()
    assert "<table>" in html and html.count("<img") >= 5
    images = [line.split("(")[1].rstrip(")") for line in markdown.splitlines() if line.startswith("![")]
    assert images and all((tmp_path / "report" / i).exists() for i in images)


@pytest.mark.slow
def test_report_on_chosen_run_ids_reports_exactly_those(paper_runs, tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{paper_runs / 'mlflow.db'}")
    honest = client.search_runs(
        [client.get_experiment_by_name("genre-style").experiment_id], "tags.experiment = 'paper_track_split'"
    )[0]
    result = run_cli(["--run-ids", honest.info.run_id, "--out", str(tmp_path / "r")], paper_runs, module="genre_style.report")
    assert result.returncode == 0, result.stderr
    markdown = (tmp_path / "r" / "report.md").read_text()
    assert "track split (no song in two splits" in markdown and "random clip split" not in markdown
    assert honest.info.run_id[:8] in markdown


@pytest.mark.slow
def test_embed_writes_clip_and_track_tables_for_a_folder(paper_runs, tmp_path):
    client = MlflowClient(tracking_uri=f"sqlite:///{paper_runs / 'mlflow.db'}")
    run = client.search_runs(
        [client.get_experiment_by_name("genre-style").experiment_id], "tags.experiment = 'paper_track_split'"
    )[0]
    rng = np.random.default_rng(0)
    music = tmp_path / "music"
    write_wav(music / "a.wav", 0.1 * rng.standard_normal(22050 * 3))  # 3 clips
    write_wav(music / "stereo48k.wav", 0.1 * rng.standard_normal((48000 * 2, 2)), 48000)  # resampled, mixed down: 2 clips
    write_wav(music / "sub" / "short.wav", 0.1 * rng.standard_normal(11025))  # 0.5 s: padded
    (music / "broken.wav").write_text("not audio")  # reported, skipped
    out = tmp_path / "emb" / "embeddings.parquet"
    result = run_cli([run.info.run_id, str(music), "--out", str(out)], paper_runs, module="genre_style.embed")
    assert result.returncode == 0, result.stderr
    assert "broken.wav" in result.stdout + result.stderr
    clips = pd.read_parquet(out)
    tracks = pd.read_parquet(out.with_name("embeddings_tracks.parquet"))
    assert len(tracks) == 3 and clips.groupby("path").size().sort_index().tolist() == [3, 2, 1]
    emb = [c for c in clips.columns if c.startswith("emb_")]
    probs = [c for c in clips.columns if c.startswith("prob_")]
    assert len(emb) == 64 and len(probs) == 4
    np.testing.assert_allclose(clips[probs].sum(axis=1), 1.0, atol=1e-5)
    a = clips[clips.path.str.endswith("a.wav")]
    np.testing.assert_allclose(tracks[tracks.path.str.endswith("a.wav")][emb].to_numpy()[0], a[emb].mean().to_numpy(), atol=1e-5)
    # the same checkpoint file, given as a path, gives the same numbers
    ckpt = client.download_artifacts(run.info.run_id, "checkpoints/best.ckpt", str(tmp_path))
    again = run_cli([ckpt, str(music / "a.wav"), "--out", str(tmp_path / "b.csv")], paper_runs, module="genre_style.embed")
    assert again.returncode == 0, again.stderr
    np.testing.assert_allclose(pd.read_csv(tmp_path / "b.csv")[emb].to_numpy(), a[emb].to_numpy(), atol=1e-5)
    capped = run_cli(
        [ckpt, str(music / "a.wav"), "--out", str(tmp_path / "c.csv"), "--max-clips", "2"], paper_runs, module="genre_style.embed"
    )
    assert capped.returncode == 0 and len(pd.read_csv(tmp_path / "c.csv")) == 2


@pytest.mark.slow
def test_embedding_metrics_can_be_a_sweep_objective(tmp_path):
    result = run_cli(
        [
            "-m",
            "hparams_search=dsae_optuna",
            "hydra.sweeper.n_trials=1",
            "optimized_metric=val/knn_acc_bottleneck",
            *[a for a in FAST_RUN if not a.startswith("trainer.max_epochs")],
            "trainer.max_epochs=1",
            "evaluation.embedding_metrics=true",
        ],
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    import optuna

    from genre_style.sweeps.storage import open_storage

    study = optuna.load_study(study_name="dsae_optuna", storage=open_storage(str(tmp_path / "optuna" / "dsae_optuna.journal")))
    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    child = [
        r
        for r in client.search_runs([client.get_experiment_by_name("genre-style").experiment_id])
        if "optuna.trial" in r.data.tags
    ][0]
    assert study.trials[0].value == pytest.approx(child.data.metrics["final/val/knn_acc_bottleneck"])
