"""`python -m genre_style.tracking.team_server [mlflow server options]`: the team's MLflow server, asking who you are.

MLflow's basic-auth app (`mlflow server --app-name basic-auth`) with its settings from the environment, so no secret
sits on a command line or in a committed file:

- `MLFLOW_AUTH_ADMIN_USERNAME` / `MLFLOW_AUTH_ADMIN_PASSWORD`: the admin account, created on the first start (MLflow
  ignores them once it exists: rotate with MLflow's update-password API, README "What is trusted");
- `GENRE_STYLE_AUTH_DATABASE_URI`: where accounts and permissions live (the team's PostgreSQL; default a SQLite file
  beside the server's working folder);
- `MLFLOW_BACKEND_STORE_URI`, `MLFLOW_FLASK_SERVER_SECRET_KEY`: read by MLflow itself (a random key if unset).

Every signed-in account may log runs and register models (`default_permission = EDIT`); deleting and granting stay with
an experiment's creator and the admin. A missing, placeholder or short password stops the start with one line.
Workers and users sign in with `MLFLOW_TRACKING_USERNAME` / `MLFLOW_TRACKING_PASSWORD`.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from genre_style.errors import UserError, command

PLACEHOLDERS = {"change-me", "changeme", "password", "password1234", "admin", "secret"}
MIN_PASSWORD_LENGTH = 12
AUTH_DATABASE_ENV = "GENRE_STYLE_AUTH_DATABASE_URI"


def check_password(name: str, value: str | None) -> None:
    """Refuse an unset, placeholder or short password, naming the variable (never the value)."""
    if not value:
        raise UserError(f"{name} is not set", f"set {name} in docker/.env (e.g. the output of: openssl rand -base64 24)")
    if value.lower() in PLACEHOLDERS or len(value) < MIN_PASSWORD_LENGTH:
        raise UserError(
            f"{name} is a placeholder or shorter than {MIN_PASSWORD_LENGTH} characters: refused",
            f"set {name} in docker/.env to a long random one (e.g. the output of: openssl rand -base64 24)",
        )


def write_auth_config(folder: Path, database_uri: str) -> Path:
    """MLflow's auth settings file (readable by this account only: it may hold the database's password)."""
    path = folder / "basic_auth.ini"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as ini:
        escaped = database_uri.replace("%", "%%")  # MLflow reads it with configparser, which interpolates %
        ini.write(f"[mlflow]\ndefault_permission = EDIT\ndatabase_uri = {escaped}\n")
    return path


def ensure_database(uri: str) -> None:
    """Create a PostgreSQL database that is missing (a stack whose volume predates the accounts' database); other
    kinds of store are MLflow's to create."""
    if not uri.startswith("postgresql"):
        return
    import psycopg2
    from sqlalchemy.engine import make_url

    url = make_url(uri)
    try:
        connection = psycopg2.connect(
            host=url.host, port=url.port or 5432, user=url.username, password=url.password, dbname="postgres"
        )
    except psycopg2.Error as exc:
        raise UserError(
            f"cannot reach the accounts' database at {url.render_as_string(hide_password=True)} ({str(exc).strip()[:200]})",
            f"check {AUTH_DATABASE_ENV} and that PostgreSQL runs",
        ) from None
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (url.database,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{url.database}"')
    finally:
        connection.close()


@command
def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--app-name" in argv:
        raise UserError("--app-name is set here (basic-auth)", "drop --app-name from the command line")
    check_password("MLFLOW_AUTH_ADMIN_PASSWORD", os.environ.get("MLFLOW_AUTH_ADMIN_PASSWORD"))
    if "POSTGRES_PASSWORD" in os.environ:  # the compose stack hands it over: refuse its placeholder here too
        check_password("POSTGRES_PASSWORD", os.environ["POSTGRES_PASSWORD"])
    os.environ.setdefault("MLFLOW_AUTH_ADMIN_USERNAME", "admin")
    os.environ.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_urlsafe(32))  # shared by this server's workers
    os.environ.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")  # MLflow's GenAI job runner: no jobs here
    database_uri = os.environ.get(AUTH_DATABASE_ENV) or f"sqlite:///{Path.cwd() / 'basic_auth.db'}"
    ensure_database(database_uri)
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(Path(tempfile.mkdtemp(prefix="mlflow-auth-")), database_uri))
    mlflow = Path(sys.executable).with_name("mlflow")
    program = [str(mlflow)] if mlflow.exists() else [sys.executable, "-m", "mlflow"]
    os.execv(program[0], [*program, "server", "--app-name", "basic-auth", *argv])
    return 0  # not reached: the server replaces this process


if __name__ == "__main__":
    sys.exit(main())
