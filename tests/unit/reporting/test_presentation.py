"""What a person sees: genre colours in plots, the address that opens MLflow on the runs."""

from __future__ import annotations

import pytest


def test_every_gtzan_genre_has_its_own_colour_and_others_get_the_rest():
    from genre_style.data.gtzan import GTZAN_GENRES
    from genre_style.evaluation.plots import genre_colors

    colours = genre_colors(list(GTZAN_GENRES) + ["ambient", "drill"])
    assert len(set(colours.values())) == len(colours) == 12
    assert genre_colors(["jazz"])["jazz"] == colours["jazz"]  # the same genre, the same colour in every plot


def test_the_ui_address_lands_on_the_experiments_runs_in_the_machine_learning_view(tmp_path):
    from mlflow.tracking import MlflowClient

    from genre_style.tracking.mlflow_store import ui_url

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert ui_url(uri, "http://h:5000") == "http://h:5000/#/experiments?workflowType=machine_learning"  # no store yet
    experiment = MlflowClient(tracking_uri=uri).create_experiment("genre-style")
    assert ui_url(uri, "http://h:5000/") == f"http://h:5000/#/experiments/{experiment}/runs?workflowType=machine_learning"


def test_a_run_links_to_the_ui_that_serves_its_store(tmp_path):
    """`make ui` records where it serves a local store; a server is its own UI; otherwise `make ui`'s default."""
    from genre_style.tracking.mlflow_store import DEFAULT_UI, record_ui, ui_address

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    assert ui_address(store, tmp_path) == DEFAULT_UI
    record_ui(store, "http://127.0.0.1:5077", tmp_path)
    assert ui_address(store, tmp_path) == "http://127.0.0.1:5077"
    assert ui_address(f"sqlite:///{tmp_path / 'other.db'}", tmp_path) == DEFAULT_UI  # recorded for another store
    assert ui_address("http://team:5000", tmp_path) == "http://team:5000"


@pytest.mark.slow  # a subprocess (make, then MLflow's UI)
def test_make_ui_serves_the_store_training_logs_to(tmp_path):
    """`make ui` follows $MLFLOW_TRACKING_URI and notes the address it serves it at (runs link there); a tracking server
    is its own UI. The store goes by environment: a database URL's password never reaches a command line."""
    import json
    import os
    import signal
    import subprocess
    import time
    import urllib.request

    from tests.conftest import REPO
    from tests.servers import free_port

    def make_ui(uri: str, port: int) -> subprocess.Popen:
        env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "GENRE_STYLE_OUTPUTS": str(tmp_path), "PORT": str(port)}
        command = ["make", "-s", "-o", ".venv/.installed", "ui"]  # -o: never reinstall here
        return subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, text=True, start_new_session=True)

    server = make_ui("http://team:5000", free_port())
    assert "tracking server" in server.communicate(timeout=60)[0] and server.returncode == 0
    store, port = f"sqlite:///{tmp_path / 'team.db'}", free_port()
    ui = make_ui(store, port)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("make ui served nothing in 120 s")
        assert json.loads((tmp_path / "mlflow-ui.json").read_text()) == {"store": store, "address": f"http://127.0.0.1:{port}"}
        assert store not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout  # not on a command line
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        ui.wait(timeout=30)
