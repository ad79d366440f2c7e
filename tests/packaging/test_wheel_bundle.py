"""The wheel carries the stack's files, and its CLI writes them out and prints the OTEL_* lines.

The wheel is built here from a copy of the sources (`pip wheel`, no build isolation) and installed
with --no-deps into a fresh venv whose only other packages are the project venv's (a .pth line),
so the installed package, not this checkout, answers."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from pixel_llm_otel._stack_bundle import (
    BundleConflict,
    bundled_files,
    otel_env_lines,
    write_bundle,
)

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md", "pixel_llm_otel")


@dataclass(frozen=True)
class Installed:
    wheel: Path
    python: Path
    cli: Path
    env: dict[str, str]


def _clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    return env


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A wheel built from a copy of the sources, installed into a fresh venv."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"
    src.mkdir()
    for name in SOURCES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, src / name)
    for name in bundled_files(REPO):
        (src / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, src / name)
    env = _clean_env()
    pip = [sys.executable, "-m", "pip"]
    build = ["wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(base / "dist")]
    subprocess.run([*pip, *build, str(src)], check=True, env=env, cwd=base, timeout=300)
    wheel = next((base / "dist").glob("pixel_llm_otel-*.whl"))
    venv = base / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True, env=env,
    ).stdout.strip()  # fmt: skip
    # the project venv's packages (rich, torch, ...) below the venv's own: deps without a download.
    # Every site directory of this interpreter, not only its purelib: a per-checkout .venv layer
    # finds its dependencies through a .pth of its own, which a plain path line would not follow.
    sites = [p for p in sys.path if p.endswith("site-packages") and Path(p).is_dir()]
    Path(purelib, "project-venv.pth").write_text(
        "".join(f"import site; site.addsitedir({p!r})\n" for p in sites)
    )
    subprocess.run(
        [*pip, "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True, env=env, cwd=base, timeout=300,
    )  # fmt: skip
    return Installed(wheel, python, venv / "bin" / "pixel-llm-otel", env)


def test_wheel_carries_every_bundled_file(installed: Installed) -> None:
    """Every file BUNDLE_PATTERNS selects in the checkout is in the wheel, under _stack/."""
    with zipfile.ZipFile(installed.wheel) as wheel:
        names = set(wheel.namelist())
    expected = {f"pixel_llm_otel/_stack/{name}" for name in bundled_files(REPO)}
    assert expected
    assert expected <= names, sorted(expected - names)
    assert "pixel_llm_otel/_stack/collector/docker-compose.yaml" in names


def test_installed_cli_writes_the_stack_files(installed: Installed, tmp_path: Path) -> None:
    """`pixel-llm-otel stack write DIR` from the installed wheel writes the checkout's files."""
    where = subprocess.run(
        [str(installed.python), "-c", "import pixel_llm_otel; print(pixel_llm_otel.__file__)"],
        check=True, capture_output=True, text=True, env=installed.env, cwd=tmp_path,
    ).stdout  # fmt: skip
    assert where.startswith(str(installed.python.parents[1])), where
    out = tmp_path / "stack"
    done = subprocess.run(
        [str(installed.cli), "stack", "write", str(out)],
        capture_output=True, text=True, env=installed.env, cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert bundled_files(out) == bundled_files(REPO)
    for name in bundled_files(REPO):
        assert (out / name).read_bytes() == (REPO / name).read_bytes(), name


def test_bundle_has_every_file_the_compose_file_mounts(tmp_path: Path) -> None:
    """Every local path docker-compose.yaml mounts (./x, ../dashboards) is in the bundle."""
    import yaml

    write_bundle(tmp_path)
    compose_dir = tmp_path / "collector"
    compose = yaml.safe_load((compose_dir / "docker-compose.yaml").read_text())
    sources = {
        volume.split(":")[0]
        for service in compose["services"].values()
        for volume in service.get("volumes", [])
        if volume.startswith(".")
    }
    assert sources
    for source in sorted(sources):
        path = (compose_dir / source).resolve()
        assert path.exists(), source
        if path.is_dir():
            assert any(p.is_file() for p in path.rglob("*")), source


def test_installed_cli_prints_otel_lines(installed: Installed, tmp_path: Path) -> None:
    """`pixel-llm-otel stack env` prints lines for OTLP/HTTP on 4318, or gRPC on 4317."""
    run = [str(installed.cli), "stack", "env"]
    http = subprocess.run(
        [*run, "--host", "collector.local"],
        check=True, capture_output=True, text=True, env=installed.env, cwd=tmp_path,
    ).stdout.splitlines()  # fmt: skip
    grpc = subprocess.run(
        [*run, "--protocol", "grpc"],
        check=True, capture_output=True, text=True, env=installed.env, cwd=tmp_path,
    ).stdout.splitlines()  # fmt: skip
    assert http == ["export OTEL_EXPORTER_OTLP_ENDPOINT=http://collector.local:4318"]
    assert grpc == [
        "export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4317",
        "export OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
    ]


def test_write_refuses_to_overwrite_changed_files(tmp_path: Path) -> None:
    """A locally edited file is named and kept; --force (force=True) overwrites it."""
    first = write_bundle(tmp_path)
    assert first.written
    edited = tmp_path / "collector" / "otelcol.yaml"
    edited.write_text("# mine\n")
    with pytest.raises(BundleConflict) as caught:
        write_bundle(tmp_path)
    assert caught.value.paths == (edited,)
    assert edited.read_text() == "# mine\n"
    again = write_bundle(tmp_path, force=True)
    assert again.written == (edited,)
    assert edited.read_bytes() == (REPO / "collector" / "otelcol.yaml").read_bytes()


@pytest.mark.parametrize(
    ("kwargs", "lines"),
    [
        ({}, ["export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318"]),
        (
            {"protocol": "grpc", "port": 14317, "service_name": "svc"},
            [
                "export OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:14317",
                "export OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
                "export OTEL_SERVICE_NAME=svc",
            ],
        ),
    ],
    ids=["http-default", "grpc-port-service"],
)
def test_otel_env_lines(kwargs: dict[str, object], lines: list[str]) -> None:
    """HTTP/protobuf (the default) gets 4318 and no protocol line; gRPC gets 4317 and one."""
    assert otel_env_lines(**kwargs) == lines  # type: ignore[arg-type]
