"""The built wheel carries its migrations, catalogs and static files, and can migrate by itself.

The wheel is built from a copy of the source (setuptools' PEP 517 hook, no network), unpacked
into a directory that comes first on ``sys.path``, and ``gongnon migrate`` runs from a directory
far from the source tree: what it finds, it found in the wheel.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("core", "conversations", "bots")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, src / package, ignore=shutil.ignore_patterns("__pycache__", "*.pyc")
        )
    out = tmp_path_factory.mktemp("dist")
    build = (
        "import sys; from setuptools import build_meta; print(build_meta.build_wheel(sys.argv[1]))"
    )
    done = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        [sys.executable, "-c", build, str(out)], cwd=src, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return out / done.stdout.strip().splitlines()[-1]


def test_the_wheel_ships_migrations_catalogs_and_static_files(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = [
        path.relative_to(ROOT).as_posix()
        for package in PACKAGES
        for path in (ROOT / package).rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix in {".py", ".yaml", ".ini", ".mako", ".html", ".js", ".css", ".svg"}
    ]
    assert "core/adapters/migrations/alembic.ini" in shipped
    assert "core/adapters/migrations/script.py.mako" in shipped
    missing = sorted(set(shipped) - names)
    assert missing == [], f"not in the wheel: {missing}"
    assert not any(name.startswith(("tests/", "bench/", "migrations/")) for name in names)


async def test_gongnon_migrate_runs_from_the_installed_wheel(
    wheel: Path, database_url: str, tmp_path: Path
) -> None:
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(site),  # before the venv's editable install of the source tree
        "GONGNON_DATABASE_URL": database_url,
        "GONGNON_DATA_DIR": str(elsewhere),
    }
    script = (
        "import sys, core.adapters.db as db, bots.cli as cli\n"
        f"assert db.__file__.startswith({str(site)!r}), db.__file__\n"
        "sys.exit(cli.main(['migrate']))\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        script,
        cwd=elsewhere,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()[-2000:]
    assert b"database is up to date" in out
