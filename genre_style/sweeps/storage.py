"""Where a study lives: a journal file under outputs/ by default (safe for several processes), or an RDB URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

RDB_SCHEMES = ("sqlite:", "postgresql", "postgres:", "mysql", "mariadb", "oracle", "mssql")


def storage_url(storage: str | None, default_dir: str | Path, study_name: str) -> str:
    """A storage string that every trial process can open: a DB URL as given, else a journal file path."""
    if storage:
        return str(storage)
    return str(Path(default_dir).expanduser().resolve() / f"{study_name}.journal")


def open_storage(storage: str) -> Any:
    """An Optuna storage for a DB URL (RDBStorage) or a file path (JournalStorage with file locks)."""
    import optuna
    from optuna.storages.journal import JournalFileBackend

    if storage.startswith(RDB_SCHEMES):
        return optuna.storages.RDBStorage(storage, heartbeat_interval=None)
    path = Path(storage.removeprefix("journal://")).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
