"""Real servers for tests: a throwaway PostgreSQL cluster and an `mlflow server`, both on 127.0.0.1.

PostgreSQL comes from the machine (Debian: `apt-get install postgresql`; `.ci/run` installs it). Where it
is missing or won't start, tests skip with the reason, unless GENRE_STYLE_REQUIRE_POSTGRES=1 (CI) makes
that a failure.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

PG_USER = "genre"
PG_PASSWORD = "test-only-secret"  # a throwaway cluster on loopback; the tests check it never reaches MLflow


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def unavailable(reason: str) -> None:
    """Skip, or fail where the environment promises PostgreSQL (CI)."""
    if os.environ.get("GENRE_STYLE_REQUIRE_POSTGRES") == "1":
        pytest.fail(f"PostgreSQL is required here (GENRE_STYLE_REQUIRE_POSTGRES=1): {reason}")
    pytest.skip(reason)


def postgres_bindir() -> Path | None:
    """Where initdb and pg_ctl live: on PATH, else Debian's /usr/lib/postgresql/<version>/bin (newest)."""
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(Path(p).parts[-3]))
    return Path(found[-1]).parent if found else None


@contextmanager
def postgres_server(databases: tuple[str, ...]) -> Iterator[dict[str, str]]:
    """A new cluster with password (SCRAM) login over TCP; yields a SQLAlchemy URL per database."""
    bindir = postgres_bindir()
    if bindir is None:
        unavailable("PostgreSQL server binaries not found (Debian/Ubuntu: apt-get install postgresql)")
    # PostgreSQL refuses to run as root: as root, run it as the `postgres` account the package creates.
    as_user: list[str] = []
    if os.geteuid() == 0:
        if shutil.which("runuser") is None:
            unavailable("running as root without runuser: cannot start PostgreSQL as another user")
        as_user = ["runuser", "-u", "postgres", "--"]
    home = Path(tempfile.mkdtemp(prefix="genre-style-pg-"))  # under /tmp: the postgres account can reach it
    data, log = home / "data", home / "server.log"
    pwfile = home / "pwfile"
    pwfile.write_text(PG_PASSWORD + "\n")
    if as_user:
        shutil.chown(home, "postgres")
        shutil.chown(pwfile, "postgres")
    port = free_port()
    url = f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}"
    started = False

    def run(*cmd: str, timeout: float = 120) -> None:
        result = subprocess.run([*as_user, *cmd], capture_output=True, text=True, timeout=timeout, cwd=home)
        if result.returncode != 0:
            tail = log.read_text()[-1500:] if log.exists() else ""
            unavailable(f"{Path(cmd[0]).name} failed: {(result.stderr or result.stdout)[-1500:]} {tail}")

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            PG_USER,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "-o",
            f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            "start",
        )
        started = True
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=port, user=PG_USER, password=PG_PASSWORD, dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            for name in databases:
                cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        yield {name: f"{url}/{name}" for name in databases}
    finally:
        if started:
            subprocess.run(
                [*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"], capture_output=True, timeout=60
            )
        shutil.rmtree(home, ignore_errors=True)


@contextmanager
def mlflow_server(
    backend_store_uri: str, artifacts: Path, timeout: float = 120, auth: dict[str, str] | None = None
) -> Iterator[str]:
    """`mlflow server` on a free loopback port, proxying artifacts (--serve-artifacts); yields its URL. With `auth`
    (environment: the admin's password, the accounts' database), the team's server that asks who you are
    (`genre_style.tracking.team_server`, what docker/compose.yaml runs)."""
    port = free_port()
    log_path = artifacts.parent / "mlflow-server.log"
    program = ["genre_style.tracking.team_server"] if auth else ["mlflow", "server"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                *program,
                "--backend-store-uri",
                backend_store_uri,
                "--serve-artifacts",
                "--artifacts-destination",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_TRACKING_URI": "", **(auth or {})},
            cwd=artifacts.parent,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                pytest.fail(f"mlflow server exited ({process.returncode}): {log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"mlflow server did not answer in {timeout:.0f} s: {log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
