"""What a person sees: genre colours in plots, the address that opens MLflow on the runs."""

from __future__ import annotations


def test_every_gtzan_genre_has_its_own_colour_and_others_get_the_rest():
    from genre_style.data.gtzan import GTZAN_GENRES
    from genre_style.evaluation.plots import genre_colors

    colours = genre_colors(list(GTZAN_GENRES) + ["ambient", "drill"])
    assert len(set(colours.values())) == len(colours) == 12
    assert genre_colors(["jazz"])["jazz"] == colours["jazz"]  # the same genre, the same colour in every plot


def test_the_ui_address_lands_on_the_experiments_runs_in_the_machine_learning_view(tmp_path):
    from mlflow.tracking import MlflowClient

    from genre_style.tracking.store import ui_url

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert ui_url(uri, "http://h:5000") == "http://h:5000/#/experiments?workflowType=machine_learning"  # no store yet
    experiment = MlflowClient(tracking_uri=uri).create_experiment("genre-style")
    assert ui_url(uri, "http://h:5000/") == f"http://h:5000/#/experiments/{experiment}/runs?workflowType=machine_learning"
