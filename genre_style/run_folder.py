"""A run's folder (`outputs/runs/<timestamp>`): what the run used, its status, its results, and where a resume continues.

Everything a run produces is written here first; MLflow gets a copy. `run_info.json` says whether the run is
running, interrupted (and why) or finished, and which MLflow run it is; a resumed run goes on in the same folder.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any, Iterable

from omegaconf import DictConfig, OmegaConf

from genre_style.errors import UserError
from genre_style.setting_roles import BOOKKEEPING, BUDGET

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
        from genre_style.reproducibility import settings

        self.artifacts.mkdir(parents=True, exist_ok=True)
        self.update_info(math=settings())  # what decides the bits: same settings, same machine kind, same results
        (self.artifacts / "config.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))
        write_csv(self.artifacts / "data/split_tracks.csv", datamodule.split_tracks(), ["track_id", "genre", "split", "clips"])
        write_csv(self.artifacts / "data/skipped_files.csv", datamodule.skipped_files, ["path", "reason"])
        skipped = datamodule.skipped_files
        if skipped:  # each file was said when the clips were built (preprocess); once here, where they are all listed
            log.warning("%d file(s) skipped: listed with reasons in %s", len(skipped), self.artifacts / "data/skipped_files.csv")

    def finish(self, best_checkpoint: str) -> None:
        """Keep the best checkpoint with the artifacts, drop the resume checkpoint, mark the run finished."""
        if best_checkpoint:
            (self.artifacts / "checkpoints").mkdir(parents=True, exist_ok=True)
            Path(best_checkpoint).replace(self.artifacts / "checkpoints" / "best.ckpt")
        self.last_checkpoint.unlink(missing_ok=True)
        self.update_info(status="finished")

    def interrupted(self, reason: BaseException) -> None:
        """Record why the run stopped; a signal's `Preempted` learns where the run can be resumed from."""
        if not self.path.exists():
            return
        if self.last_checkpoint.exists() and hasattr(reason, "resume_folder"):
            reason.resume_folder = self.path
        self.update_info(status=f"interrupted: {type(reason).__name__}: {str(reason)[:200]}")

    @property
    def resumable(self) -> bool:
        return self.last_checkpoint.exists() and str(self.info.get("status", "")).startswith(("running", "interrupted"))


# What a resume may change: the training budget and where things go, not what is learned.
RESUME_MAY_CHANGE = BOOKKEEPING + BUDGET


def check_resume_settings(folder: RunFolder, cfg: DictConfig) -> None:
    """Refuse a resume that changes what is learned (model, loss, data, features, split, seed, optimiser), one
    line per key; the training budget may change (`RESUME_MAY_CHANGE`)."""
    from genre_style.hydra_job import flatten_config

    saved = folder.artifacts / "config.yaml"
    if not saved.exists():
        return
    before, now = flatten_config(OmegaConf.load(saved)), flatten_config(cfg)
    here = str(cfg.paths.output_dir)  # the new job's folder: the resumed run goes on in its own
    now = {k: v.replace(here, str(folder.path)) if isinstance(v, str) else v for k, v in now.items()}
    changed = [
        key for key in sorted(set(before) | set(now)) if before.get(key) != now.get(key) and not key.startswith(RESUME_MAY_CHANGE)
    ]
    if changed:
        lines = "\n".join(f"  {key}: {before.get(key)!r} when the run started, {now.get(key)!r} now" for key in changed)
        raise UserError(
            f"resume={folder.path} would change what the run learns:\n{lines}",
            "resume with the run's own settings (a resume may change trainer.max_epochs, "
            "callbacks.early_stopping.patience, time limits), or start a new run without resume=",
        )


def find_resume(cfg: DictConfig) -> RunFolder | None:
    """The run folder to continue (`resume=<run folder>` or `resume=last`), its settings checked, or None."""
    target = cfg.get("resume")
    if not target:
        return None
    if str(target) == "last":
        candidates = [RunFolder(p.parent) for p in Path(cfg.paths.output_root, "runs").glob("*/run_info.json")]
        candidates = [r for r in candidates if r.resumable]
        if not candidates:
            raise UserError(
                f"resume=last: no interrupted run with a checkpoint under {cfg.paths.output_root}/runs",
                "pass the run folder itself: resume=outputs/runs/<timestamp>",
            )
        folder = max(candidates, key=lambda r: r.last_checkpoint.stat().st_mtime)
    else:
        folder = RunFolder(Path(str(target)).expanduser())
    if not folder.last_checkpoint.exists():
        raise UserError(
            f"resume={target}: {folder.last_checkpoint} does not exist",
            "pass a run folder of an interrupted run (outputs/runs/<timestamp>), or resume=last",
        )
    check_resume_settings(folder, cfg)
    from genre_style.model_files import read_checkpoint

    read_checkpoint(folder.last_checkpoint)  # a file that would run code is refused here, in one line, before Lightning reads it
    log.info("resuming %s from %s", folder.path, folder.last_checkpoint)
    return folder
