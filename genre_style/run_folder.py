"""A run's folder (`outputs/runs/<timestamp>`): what the run used, its status, its results, and where a resume continues.

Everything a run produces is written here first; MLflow gets a copy. `run_info.json` says whether the run is
running, finished, or was resumed elsewhere, and which MLflow run it is.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any, Iterable

from omegaconf import DictConfig, OmegaConf

from genre_style.errors import UserError

log = logging.getLogger(__name__)


def write_csv(path: Path, rows: Iterable[dict[str, Any]], fields: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


class RunFolder:
    """`run_info.json`, `checkpoints/last.ckpt` (for resuming) and `artifacts/` (config, data lists, reports,
    plots, the best checkpoint: what is uploaded to MLflow)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.artifacts = self.path / "artifacts"
        self.last_checkpoint = self.path / "checkpoints" / "last.ckpt"

    @property
    def info(self) -> dict[str, Any]:
        info_path = self.path / "run_info.json"
        return json.loads(info_path.read_text()) if info_path.exists() else {}

    def update_info(self, **fields: Any) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / "run_info.json").write_text(json.dumps({**self.info, **fields}, indent=2))

    def record_inputs(self, cfg: DictConfig, datamodule: Any) -> None:
        """What the run used, written before training so a crash still leaves it behind."""
        self.artifacts.mkdir(parents=True, exist_ok=True)
        (self.artifacts / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        write_csv(self.artifacts / "data/split_tracks.csv", datamodule.split_tracks(), ["track_id", "genre", "split", "clips"])
        write_csv(self.artifacts / "data/skipped_files.csv", datamodule.skipped_files, ["path", "reason"])
        for skipped in datamodule.skipped_files:
            log.warning("skipped %s: %s", skipped["path"], skipped["reason"])

    def finish(self, best_checkpoint: str, resumed: RunFolder | None) -> None:
        """Keep the best checkpoint with the artifacts, drop the resume checkpoint, mark the run (and the one it
        continued) finished."""
        if best_checkpoint:
            (self.artifacts / "checkpoints").mkdir(parents=True, exist_ok=True)
            Path(best_checkpoint).replace(self.artifacts / "checkpoints" / "best.ckpt")
        self.last_checkpoint.unlink(missing_ok=True)
        self.update_info(status="finished")
        if resumed is not None:
            resumed.update_info(status=f"resumed and finished in {self.path}")


def find_resume(cfg: DictConfig) -> RunFolder | None:
    """The run folder to continue (`resume=<run folder>` or `resume=last`), or None."""
    target = cfg.get("resume")
    if not target:
        return None
    if str(target) == "last":
        candidates = [RunFolder(p.parent) for p in Path(cfg.paths.output_root, "runs").glob("*/run_info.json")]
        candidates = [r for r in candidates if r.last_checkpoint.exists() and r.info.get("status") == "running"]
        if not candidates:
            raise UserError(f"resume=last: no interrupted run with a checkpoint under {cfg.paths.output_root}/runs",
                            "pass the run folder itself: resume=outputs/runs/<timestamp>")
        folder = max(candidates, key=lambda r: r.last_checkpoint.stat().st_mtime)
    else:
        folder = RunFolder(Path(str(target)).expanduser())
    if not folder.last_checkpoint.exists():
        raise UserError(f"resume={target}: {folder.last_checkpoint} does not exist",
                        "pass a run folder of an interrupted run (outputs/runs/<timestamp>), or resume=last")
    log.info("resuming %s from %s", folder.path, folder.last_checkpoint)
    return folder
