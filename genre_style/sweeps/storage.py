"""Where a study lives: a journal file under outputs/ by default (safe for several processes), or an RDB URL
(PostgreSQL, MySQL, SQLite) that sweep workers on several machines share."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import Any

from genre_style.errors import UserError
from genre_style.urls import redact_url

RDB_SCHEMES = ("sqlite:", "postgresql", "postgres:", "mysql", "mariadb", "oracle", "mssql")
SCHEMA_RACE_ATTEMPTS = 6
# The study's storage as the sweep opened it, handed to its trials (in-process, or joblib processes, which inherit the
# environment): a trial's overrides are logged by Hydra and written to its run folder, so they carry it redacted.
HANDED_OVER_ENV = "GENRE_STYLE_SWEEP_STORAGE"


def hand_over(storage: str) -> str:
    """Keep `storage` for this process's trials; returns what a trial's overrides may show (the password as ***)."""
    os.environ[HANDED_OVER_ENV] = storage
    return redact_url(storage)


def taken_over(shown: str) -> str:
    """The storage a trial's `sweep_context.storage` stands for: the handed-over URL where `shown` is its redacted form."""
    handed = os.environ.get(HANDED_OVER_ENV)
    return handed if handed and redact_url(handed) == shown else shown


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
        return open_rdb_storage(storage)
    path = Path(storage.removeprefix("journal://")).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return optuna.storages.JournalStorage(JournalFileBackend(str(path)))


def open_rdb_storage(url: str) -> Any:
    """RDBStorage, retried briefly: workers that start together on an empty database race to create Optuna's
    tables (optuna#1092) and the losers see an integrity error once the winner has made them."""
    import optuna
    import sqlalchemy.exc

    for attempt in range(SCHEMA_RACE_ATTEMPTS):
        try:
            return optuna.storages.RDBStorage(url, heartbeat_interval=None)
        except (sqlalchemy.exc.IntegrityError, sqlalchemy.exc.ProgrammingError):
            if attempt == SCHEMA_RACE_ATTEMPTS - 1:
                raise
            time.sleep(0.2 + random.random())
        except (sqlalchemy.exc.OperationalError, sqlalchemy.exc.ArgumentError, ModuleNotFoundError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0][:300]
            raise UserError(
                f"cannot open the Optuna storage {redact_url(url)} ({reason})",
                "start the database or fix hydra.sweeper.storage (or $OPTUNA_STORAGE), e.g. "
                "postgresql+psycopg2://user:password@host:5432/optuna; null keeps the study in a file under outputs/",
            ) from None
    raise AssertionError("unreachable")
