"""scripts/setup-python.sh: each checkout gets its own layer, so clones never break each other.

Two copies of the sources run the script on one shared dependency layer (this test's own, named
by PIXEL_LLM_OTEL_SHARED_VENV, so nothing is installed from the network and the shared layer is
only read). Each .venv imports its own checkout's package; deleting one clone leaves the other's
`pixel-llm-otel` working; the shared layer's files are untouched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "pixel_llm_otel", "scripts")


def shared_layer() -> Path:
    """The dependency layer this test runs on: the one named in .venv/.layer, else this venv."""
    stamp = REPO / ".venv" / ".layer"
    if stamp.is_file():
        return Path(stamp.read_text().split()[0])
    return Path(sys.prefix)


def checkout(root: Path) -> Path:
    root.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
            shutil.copytree(REPO / name, root / name, ignore=ignore)
        else:
            shutil.copy2(REPO / name, root / name)
    return root


def listing(directory: Path) -> list[tuple[str, int]]:
    """(name, mtime) of the shared layer's site-packages entries."""
    return sorted((p.name, p.stat().st_mtime_ns) for p in directory.iterdir())


@pytest.fixture
def setup_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIXEL_LLM_OTEL_CACHE"] = str(tmp_path / "cache")
    env["PIXEL_LLM_OTEL_SHARED_VENV"] = str(shared_layer())
    return env


def run_setup(root: Path, env: dict[str, str]) -> None:
    done = subprocess.run(
        ["bash", str(root / "scripts" / "setup-python.sh")],
        capture_output=True, text=True, env=env, timeout=300, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


def package_file(root: Path, env: dict[str, str]) -> str:
    return subprocess.run(
        [str(root / ".venv" / "bin" / "python"), "-c",
         "import pixel_llm_otel; print(pixel_llm_otel.__file__)"],
        capture_output=True, text=True, env=env, cwd="/", check=True, timeout=60,
    ).stdout.strip()  # fmt: skip


def test_two_clones_keep_their_own_package(tmp_path: Path, setup_env: dict[str, str]) -> None:
    """Each clone's .venv imports that clone; removing one leaves the other's CLI working."""
    shared_site = Path(
        subprocess.run(
            [str(shared_layer() / "bin" / "python"), "-c",
             "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
    )  # fmt: skip
    before = listing(shared_site)
    first = checkout(tmp_path / "first")
    second = checkout(tmp_path / "second")
    run_setup(first, setup_env)
    run_setup(second, setup_env)
    assert package_file(first, setup_env).startswith(str(first))
    assert package_file(second, setup_env).startswith(str(second))
    shutil.rmtree(first)
    version = subprocess.run(
        [str(second / ".venv" / "bin" / "pixel-llm-otel"), "--version"],
        capture_output=True, text=True, env=setup_env, cwd="/", timeout=60, check=False,
    )  # fmt: skip
    assert version.returncode == 0, version.stderr
    assert "pixel-llm-otel" in version.stdout
    assert listing(shared_site) == before


def test_rerun_keeps_a_ready_layer(tmp_path: Path, setup_env: dict[str, str]) -> None:
    """A second run on a ready checkout reuses its layer (no reinstall) and replaces an old-style
    .venv symlink with a layer."""
    root = checkout(tmp_path / "clone")
    (root / ".venv").symlink_to(shared_layer())
    run_setup(root, setup_env)
    assert not (root / ".venv").is_symlink()
    stamp = (root / ".venv" / ".layer").stat().st_mtime_ns
    run_setup(root, setup_env)
    assert (root / ".venv" / ".layer").stat().st_mtime_ns == stamp
    assert package_file(root, setup_env).startswith(str(root))
