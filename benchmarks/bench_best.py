"""`experiment=best` on real music: wall time to its best epoch (goal: <= 5 minutes on 2 CPU cores).

Runs `python -m genre_style.train experiment=best` as a user would (its own output folder, MLflow off) on a
GTZAN-layout folder, by default the development set `../shared/data/gtzan-dev-3` next to the repository, and
reads the times from the run folder: training starts when the run writes its config (after preprocessing),
and the best epoch ends when its checkpoint is written. Skipped with a message when the folder is missing.

python -m benchmarks.bench_best [--data-root DIR] [--genres classical,jazz,rock] [--seed 0] [--device auto|cpu|gpu]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import REPO, report

DEV_SET = REPO.parent / "shared" / "data" / "gtzan-dev-3" / "genres"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEV_SET)
    parser.add_argument("--genres", default="classical,jazz,rock")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "gpu"])
    args = parser.parse_args()
    if not args.data_root.is_dir():
        print(f"best: skipped, no data at {args.data_root} (pass --data-root /path/to/gtzan-layout-folder)")
        return
    with tempfile.TemporaryDirectory(prefix="bench-best-") as out:
        command = [
            sys.executable,
            "-m",
            "genre_style.train",
            "experiment=best",
            f"data.source.root={args.data_root}",
            f"data.source.genres=[{args.genres}]",
            f"seed={args.seed}",
            "logger=none",
            "trainer.enable_progress_bar=false",
            "data.progress=false",
            f"trainer={'default' if args.device == 'auto' else args.device}",
        ]
        started = time.time()
        subprocess.run(
            command,
            cwd=REPO,
            env={**os.environ, "GENRE_STYLE_OUTPUTS": out},
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        finished = time.time()
        run = next(Path(out, "runs").iterdir())
        artifacts = run / "artifacts"
        fit_start = (artifacts / "config.yaml").stat().st_mtime
        best_end = (artifacts / "checkpoints" / "best.ckpt").stat().st_mtime
        history = json.loads((artifacts / "report" / "history.json").read_text())
        metrics = json.loads((artifacts / "report" / "final_metrics.json").read_text())
    best_epoch = max(history, key=lambda row: row.get("val/acc", 0.0))["epoch"]
    rows = [
        {
            "device": args.device,
            "epochs": len(history),
            "best_epoch": best_epoch,
            "setup_s": fit_start - started,
            "to_best_epoch_s": best_end - fit_start,
            "fit_and_eval_s": finished - fit_start,
            "val_acc": metrics["val/acc"],
            "goal": "to_best_epoch_s <= 300",
        }
    ]
    report("best", rows, ["device", "epochs", "best_epoch", "setup_s", "to_best_epoch_s", "fit_and_eval_s", "val_acc", "goal"])


if __name__ == "__main__":
    main()
