"""The rendered-pairs benchmark's listening page: every player's file exists and plays in a real (headless) browser."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.transfer_extra import require_transfer_extra

require_transfer_extra()
pytestmark = pytest.mark.slow  # the shared fixture renders, builds a model and scores two pairs: ~15 CPU-s

from genre_style.data.rendered import RenderSpec, render_corpus  # noqa: E402
from genre_style.style_transfer import listening  # noqa: E402
from genre_style.style_transfer import rendered_pairs as rp  # noqa: E402

SECONDS = 2.0
ENTRIES = [e for e in rp.ENTRIES if e[1] in ("content", "style", "target", "equalise")]
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
INSTALL = "apt-get install -y chromium chromium-driver (Debian) and pip install selenium (the [dev] extra)"


def _midi(path: Path, root: int) -> Path:
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    instrument = pretty_midi.Instrument(program=0)
    for i, step in enumerate((0, 4, 7, 12, 7, 4)):
        instrument.notes.append(pretty_midi.Note(velocity=90, pitch=root + step, start=0.3 * i, end=0.3 * i + 0.25))
    midi.instruments.append(instrument)
    midi.write(str(path))
    return path


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, rp.Table]:
    """A tiny corpus (5 two-second tunes, two styles), the brackets and the equaliser on two test pairs, the page."""
    from genre_style.inference import Embedder
    from tests import checkpoints

    folder = tmp_path_factory.mktemp("midi")
    for i in range(5):
        _midi(folder / f"tune{i}.mid", 60 + i)
    spec = RenderSpec(
        chorales=0, midi=(str(folder),), seconds=SECONDS, styles=("piano", "organ"), held_out=(), split_sizes=(0.2, 0.2, 0.6)
    )  # three test pieces: a pair's style reference is another piece
    corpus = render_corpus(tmp_path_factory.mktemp("rendered"), spec, progress=False, workers=1)
    model, clip_spec = checkpoints.from_experiment("best", tmp_path_factory.mktemp("model"))
    embedder = Embedder.from_checkpoint(checkpoints.save(model, clip_spec, tmp_path_factory.mktemp("ckpt") / "m.ckpt"))
    out = tmp_path_factory.mktemp("bench")
    pairs = rp.rendered_pairs(corpus, "test", 2, seed=0)
    table = rp.run_rendered_pairs(embedder, embedder, pairs, out, ENTRIES, note_content=False, progress=False)
    # --reuse: the outputs already there are scored as they are, not made again
    stamps = {f: f.stat().st_mtime_ns for f in out.rglob("*.wav")}
    again = rp.run_rendered_pairs(embedder, embedder, pairs, out, ENTRIES, note_content=False, progress=False, reuse=True)
    assert again.values == table.values and {f: f.stat().st_mtime_ns for f in out.rglob("*.wav")} == stamps
    return listening.write_page(table, out, "tiny"), table


def test_the_page_has_a_player_per_entry_and_pair_with_its_scores(page: tuple[Path, rp.Table]) -> None:
    import re

    path, table = page
    text = path.read_text()
    sources = re.findall(r'<audio controls preload="metadata" src="([^"]+)">', text)
    assert len(sources) == len(ENTRIES) * 2 and len(set(sources)) == len(sources)
    assert all((path.parent / s).is_file() and not s.startswith(("/", "http", "file:")) for s in sources)  # relative
    pair = next(iter(table.values["true target"]["lsd"]))
    assert f"<h2>{pair}</h2>" in text and "<td>true target</td>" in text and "<td>0.00</td>" in text  # its LSD
    assert "http://" not in text and "https://" not in text  # self-contained: nothing fetched
    # a missing output is an error when the page is written, not a silent player
    first = rp.output_path(path.parent, "equalise (baseline)", pair)
    moved = first.rename(first.with_suffix(".bak"))
    try:
        with pytest.raises(FileNotFoundError, match="1 output"):
            listening.write_page(table, path.parent, "tiny")
    finally:
        moved.rename(first)


def _browser() -> tuple[str, str] | None:
    """Chromium and its driver, where both and selenium are installed."""
    import importlib.util

    browser = next((shutil.which(b) for b in BROWSERS if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if browser and driver and importlib.util.find_spec("selenium") is not None:
        return browser, driver
    return None


def test_every_player_plays_in_a_headless_browser(page: tuple[Path, rp.Table]) -> None:
    found = _browser()
    if found is None:
        if os.environ.get("GENRE_STYLE_REQUIRE_TRANSFER") == "1":
            pytest.fail(f"no headless Chromium to open the listening page: {INSTALL}", pytrace=False)
        pytest.skip(f"no Chromium, chromedriver or selenium: {INSTALL}")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = found
    path, _ = page
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    with tempfile.TemporaryDirectory() as profile:
        for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--autoplay-policy=no-user-gesture-required", f"--user-data-dir={profile}"):  # fmt: skip
            options.add_argument(flag)
        driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
        try:
            driver.set_script_timeout(30)
            driver.get(path.as_uri())
            players = driver.execute_async_script(
                """
                const done = arguments[arguments.length - 1];
                const players = Array.from(document.querySelectorAll('audio'));
                Promise.all(players.map(a => new Promise(resolve => {
                    const report = () => resolve({src: a.getAttribute('src'), duration: a.duration,
                                                  error: a.error ? a.error.code : null});
                    if (a.readyState >= 1) { report(); return; }
                    a.addEventListener('loadedmetadata', report, {once: true});
                    a.addEventListener('error', report, {once: true});
                    a.load();
                }))).then(done);
                """
            )
        finally:
            driver.quit()
    assert len(players) == len(ENTRIES) * 2
    for player in players:
        assert (path.parent / player["src"]).is_file(), player
        assert player["error"] is None and player["duration"] == pytest.approx(SECONDS, abs=0.05), player


def test_the_run_is_logged_with_the_page_and_every_file(page: tuple[Path, rp.Table], tmp_path: Path) -> None:
    from genre_style.tracking.mlflow_store import open_client

    path, table = page
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run_id = listening.log_run(path.parent, uri, {"pairs": 2}, table)
    client = open_client(uri)
    logged = {a.path for a in client.list_artifacts(run_id, "rendered_pairs")}
    assert "rendered_pairs/index.html" in logged and "rendered_pairs/equalise__baseline_" in logged
    wavs = client.list_artifacts(run_id, "rendered_pairs/true_target")
    assert len(wavs) == 2 and all(w.path.endswith(".wav") for w in wavs)
    run = client.get_run(run_id)
    assert run.data.params["pairs"] == "2" and run.data.metrics["true_target.lsd"] == pytest.approx(0.0, abs=1e-6)
    assert str(tmp_path) in run.info.artifact_uri  # kept beside the store, not in the working folder


def test_transfers_and_benchmarks_share_one_experiment_with_artifacts_beside_the_store(tmp_path):
    from mlflow.tracking import MlflowClient

    from genre_style.style_transfer import EXPERIMENT, transfer_experiment

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    first = transfer_experiment(client, uri)
    assert transfer_experiment(client, uri) == first  # whichever logs first, the other finds it
    location = client.get_experiment(first).artifact_location
    assert client.get_experiment_by_name(EXPERIMENT).experiment_id == first and "mlartifacts" in location
    assert str(tmp_path) in location
