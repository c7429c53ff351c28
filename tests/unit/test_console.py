"""The console (issue #41 item 7): one compact table of the final figures, each warning once, no line naming a path
that will not exist, and a `--help` that fits a screen."""

from __future__ import annotations

import logging
import re

import pytest

from genre_style.console import hide_lightning_messages, metrics_table, quiet_console
from tests.conftest import FAST_RUN, REPO, run_cli


def test_the_final_figures_are_one_table_a_row_per_metric_a_column_per_split():
    table = metrics_table({"train/acc": 0.25, "val/acc": 0.5, "test/acc": 0.75, "val/knn_acc": 0.123456, "final/x": 1.0})
    assert table.splitlines() == [
        "final figures     train       val      test",
        "  acc            0.2500    0.5000    0.7500",
        "  knn_acc             -    0.1235         -",
    ]


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_lightnings_accelerator_lines_and_the_tested_checkpoints_path_are_dropped():
    lightning = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    seen, filters = _Seen(), list(lightning.filters)
    lightning.addHandler(seen)
    try:
        quiet_console()
        hide_lightning_messages(checkpoint="/runs/x/checkpoints/best.ckpt")
        for message in (
            "GPU available: False, used: False",
            "TPU available: False, using: 0 TPU cores",
            "Restoring states from the checkpoint path at /runs/x/checkpoints/best.ckpt",
            "`Trainer.fit` stopped: `max_epochs=3` reached.",
            "A warning about /runs/x/checkpoints/best.ckpt",  # the path alone hides nothing
        ):
            lightning.warning(message)
    finally:
        lightning.removeHandler(seen)
        lightning.filters[:] = filters
    assert seen.messages == ["`Trainer.fit` stopped: `max_epochs=3` reached.", "A warning about /runs/x/checkpoints/best.ckpt"]


@pytest.mark.slow
def test_help_is_one_screen_naming_every_group_and_the_full_dump_is_one_flag_away(tmp_path):
    said = run_cli(["--help"], tmp_path)
    assert said.returncode == 0, said.stderr
    lines = said.stdout.splitlines()
    assert len(lines) <= 45, len(lines)
    groups = sorted(p.name for p in (REPO / "conf").iterdir() if p.is_dir() and p.name != "hydra")
    for group in groups:
        assert re.search(rf"^{group}: ", said.stdout, re.M), group  # each group with its options
    assert "--cfg job" in said.stdout and "gamma=" in said.stdout
    full = run_cli(["--cfg", "job"], tmp_path)
    assert full.returncode == 0 and "optimized_metric:" in full.stdout


@pytest.mark.slow
def test_a_run_says_each_skipped_file_once_ends_with_the_table_and_names_no_vanishing_path(tmp_path, corpus_copy):
    (corpus_copy / "jazz" / "jazz.00003.wav").write_text("not audio")
    args = [a for a in FAST_RUN if not a.startswith("data.source.synthetic") and a != "data=synthetic"]
    result = run_cli([*args, f"data.source.root={corpus_copy}", "trainer.max_epochs=2"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    said = result.stdout + result.stderr
    assert said.count("jazz.00003.wav") == 1, said  # preprocessing says it; the run folder's line points at the list
    assert "1 file(s) skipped: listed with reasons in" in said
    assert "GPU available" not in said and "TPU available" not in said
    (run,) = (tmp_path / "runs").iterdir()
    assert str(run / "checkpoints" / "best.ckpt") not in said  # the file moves to artifacts/checkpoints/
    assert f"best checkpoint (for embed, predict, export): {run / 'artifacts' / 'checkpoints' / 'best.ckpt'}" in said
    assert re.search(r"final figures +train +val +test\n +acc +[0-9.]+ +[0-9.]+ +[0-9.]+\n", said), said[-2000:]
    assert "{'" not in said  # no Python dicts
