"""docker-compose.yml and the Dockerfile keep their promises (no Docker engine runs here).

Compose: PostgreSQL and Redis with healthchecks; a one-shot ``migrate``; ``serve`` and ``worker``
that do not migrate again and start only after ``migrate`` exited 0 and the services are
healthy; a named volume for the data dir (uploads); every ``GONGNON_*`` variable is a real
setting and every command a real ``gongnon`` subcommand. Dockerfile: multi-stage, pinned base,
``uv sync --frozen`` without dev groups, no editable install, non-root, and a HEALTHCHECK on
``/healthz`` that is run here against the real server.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bots.cli import _parser
from bots.server import create_app
from core.bootstrap import bootstrap
from core.config import Settings
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = ("migrate", "serve", "worker")
# name:MAJOR.MINOR[.PATCH][-variant][@sha256:digest]: never a bare major or "latest"
PINNED = re.compile(r"^[\w./-]+:\d+\.\d+(\.\d+)?(-[\w.-]+)?(@sha256:[0-9a-f]{64})?$")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def dockerfile() -> list[str]:
    """Instructions, one per item, with continuation lines joined and comments dropped."""
    joined = (ROOT / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    return [
        line.strip()
        for line in joined.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]


def _env(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment as a mapping, so services can merge it"
    return {key: str(value) for key, value in env.items()}


def _settings_from(env: dict[str, str]) -> Settings:
    values = {k: v for k, v in env.items() if k.startswith("GONGNON_")}
    return Settings(
        _env_file=None, **{k.removeprefix("GONGNON_").lower(): v for k, v in values.items()}
    )  # type: ignore[arg-type]


def test_every_service_is_there(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) >= {"postgres", "redis", *APP_SERVICES}


def test_postgres_and_redis_are_pinned_and_have_healthchecks(compose: dict[str, Any]) -> None:
    for name in ("postgres", "redis"):
        service = compose["services"][name]
        assert PINNED.match(service["image"]), f"{name}: pin a version, got {service['image']}"
        test = service["healthcheck"]["test"]
        assert test[0] in {"CMD", "CMD-SHELL"} and len(test) > 1
        volume = service["volumes"][0].split(":")[0]
        assert volume in compose["volumes"], f"{name} keeps its data in a named volume"
    assert "pg_isready" in " ".join(compose["services"]["postgres"]["healthcheck"]["test"])
    assert "ping" in compose["services"]["redis"]["healthcheck"]["test"]


def test_each_command_is_a_real_gongnon_subcommand(compose: dict[str, Any]) -> None:
    parser = _parser()
    expected = {"migrate": "migrate", "serve": "serve", "worker": "worker"}
    for name, sub in expected.items():
        command = compose["services"][name]["command"]
        assert command[:2] == ["gongnon", sub]
        parser.parse_args(command[1:])  # exits (fails the test) on an unknown command


def test_only_migrate_migrates_and_it_runs_once(compose: dict[str, Any]) -> None:
    services = compose["services"]
    migrate = services["migrate"]
    assert _settings_from(_env(migrate)).migrate_on_start
    assert migrate.get("restart", "no") == "no", "a one-shot job is not restarted"
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("serve", "worker"):
        service = services[name]
        assert not _settings_from(_env(service)).migrate_on_start, f"{name} must not migrate"
        depends = service["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["postgres"]["condition"] == "service_healthy"
        assert depends["redis"]["condition"] == "service_healthy"
        assert service["restart"] == "unless-stopped"


def test_app_services_share_one_image_and_point_at_the_compose_services(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    images = {services[name]["image"] for name in APP_SERVICES}
    assert len(images) == 1, "migrate, serve and worker run the same build"
    postgres_env = services["postgres"]["environment"]
    for name in APP_SERVICES:
        env = _env(services[name])
        settings = _settings_from(env)  # every GONGNON_* variable is a real, valid setting
        for key in env:
            if key.startswith("GONGNON_"):
                assert key.removeprefix("GONGNON_").lower() in Settings.model_fields, key
        url = settings.effective_database_url
        assert url.startswith("postgresql+asyncpg://")
        assert f"{postgres_env['POSTGRES_USER']}:" in url
        assert url.endswith(f"@postgres:5432/{postgres_env['POSTGRES_DB']}")
        assert settings.redis_url and settings.redis_url.startswith("redis://redis:6379/")


def test_uploads_live_in_a_named_volume_at_the_data_dir(compose: dict[str, Any]) -> None:
    for name in ("serve", "worker"):
        service = compose["services"][name]
        data_dir = str(_settings_from(_env(service)).data_dir)
        mounts = dict(volume.split(":")[1::-1] for volume in service["volumes"])
        assert data_dir in mounts, f"{name}: {data_dir} is not a volume"
        assert mounts[data_dir] in compose["volumes"], "a named volume, not a host path"


def test_serve_is_health_checked_on_healthz_and_published(compose: dict[str, Any]) -> None:
    serve = compose["services"]["serve"]
    assert "/healthz" in " ".join(serve["healthcheck"]["test"])
    assert any(str(port).endswith(":8080") for port in serve["ports"])
    worker = compose["services"]["worker"]
    assert worker["healthcheck"] == {"disable": True}, "the worker has no HTTP port to check"


def test_the_dockerfile_is_multi_stage_pinned_and_installs_the_lock(dockerfile: list[str]) -> None:
    args = dict(
        line.removeprefix("ARG ").split("=", 1) for line in dockerfile if line.startswith("ARG ")
    )
    froms = [line.split()[1] for line in dockerfile if line.startswith("FROM ")]
    assert len(froms) >= 2, "a builder stage and a runtime stage"
    for image in froms:
        resolved = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
        assert PINNED.match(resolved) and "latest" not in resolved, resolved
    runs = [line for line in dockerfile if line.startswith("RUN ")]
    assert any("uv sync --frozen" in run and "--no-dev" in run for run in runs)
    assert any("--no-editable" in run for run in runs)
    assert not any(re.search(r"(\s-e\s|--editable)", run) for run in runs), "no editable install"
    assert any(re.search(r"uv==\d+\.\d+\.\d+", run) for run in runs), "uv itself is pinned"
    for line in dockerfile:
        if line.startswith("COPY ") and "--from=" not in line:
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def _runtime_stage(dockerfile: list[str]) -> list[str]:
    last = max(i for i, line in enumerate(dockerfile) if line.startswith("FROM "))
    return dockerfile[last:]


def test_the_runtime_stage_is_slim_and_runs_unprivileged(dockerfile: list[str]) -> None:
    runtime = _runtime_stage(dockerfile)
    assert any(line.startswith("COPY --from=builder") for line in runtime)
    assert not any(line.startswith("RUN") and "uv sync" in line for line in runtime)
    users = [line.split()[1] for line in runtime if line.startswith("USER ")]
    assert users and users[-1] not in {"root", "0", "0:0"}
    cmd = next(line for line in runtime if line.startswith("CMD "))
    assert json.loads(cmd.removeprefix("CMD ")) == ["gongnon", "serve"]
    env = " ".join(line for line in runtime if line.startswith("ENV "))
    assert "GONGNON_DATA_DIR=/data" in env
    assert any(line.startswith("VOLUME") and "/data" in line for line in runtime)


def _healthcheck_command(dockerfile: list[str]) -> list[str]:
    line = next(line for line in _runtime_stage(dockerfile) if line.startswith("HEALTHCHECK "))
    command = json.loads(line[line.index("CMD ") + 4 :])
    assert "/healthz" in " ".join(command)
    return command


async def test_the_image_healthcheck_passes_on_a_live_server_and_fails_on_none(
    dockerfile: list[str], tmp_path: Path
) -> None:
    command = _healthcheck_command(dockerfile)
    assert command[0] == "python"
    settings = make_settings(tmp_path)
    core = await bootstrap(settings)
    runner = web.AppRunner(create_app(settings, core=core), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]

    async def check() -> int:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            *command[1:],
            env={**os.environ, "GONGNON_PORT": str(port)},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        return await proc.wait()

    try:
        assert await check() == 0
    finally:
        await runner.cleanup()
        await core.stop()
    assert await check() != 0  # nothing listens: unhealthy


def test_the_image_and_make_install_the_same_uv(dockerfile: list[str]) -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    pinned = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert pinned, "the Makefile pins uv"
    assert any(f"uv=={pinned.group(1)}" in line for line in dockerfile if line.startswith("RUN "))
    assert "$(UV) sync --frozen" in makefile
