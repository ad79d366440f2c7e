"""The observability stack's files (collector configs, rules, dashboards, compose file), bundled.

A wheel carries them under ``pixel_llm_otel/_stack/`` (setup.py copies them at build time, with
the same layout as the repository: ``collector/...`` and ``dashboards/...``, so the compose file's
relative mounts work where they are written). In a source checkout they are read from the
checkout itself. ``pixel-llm-otel stack write DIR`` writes them out; ``pixel-llm-otel stack env``
prints the ``OTEL_*`` lines that point an application at a stack.

Standard library only: setup.py loads this file by path to know what to bundle.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BUNDLE_DIR",
    "BUNDLE_PATTERNS",
    "BundleConflict",
    "Written",
    "bundle_root",
    "bundled_files",
    "otel_env_lines",
    "write_bundle",
]

#: Where the files live inside the installed package.
BUNDLE_DIR = "_stack"
#: What is bundled, as globs relative to the repository root (and to the bundle directory).
BUNDLE_PATTERNS: tuple[str, ...] = (
    "collector/*.yaml",
    "collector/fleet/*.yaml",
    "collector/jaeger/*.yaml",
    "collector/prometheus/*.yml",
    "collector/prometheus/rules/*.yml",
    "collector/alertmanager/*.yml",
    "dashboards/*.json",
    "dashboards/provisioning/*/*.yaml",
)


class BundleConflict(Exception):
    """A file to write exists with other content (and ``force`` was not given)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = tuple(paths)
        names = ", ".join(str(p) for p in self.paths[:5])
        more = f" and {len(self.paths) - 5} more" if len(self.paths) > 5 else ""
        super().__init__(f"would overwrite changed files: {names}{more}")


def bundle_root() -> Path | None:
    """The directory holding ``collector/`` and ``dashboards/``: the wheel's bundle, else the
    source checkout this module was imported from; ``None`` when neither has them."""
    here = Path(__file__).resolve().parent
    for root in (here / BUNDLE_DIR, here.parent):
        if (root / "collector" / "otelcol.yaml").is_file():
            return root
    return None


def bundled_files(root: Path) -> list[str]:
    """The bundled files under ``root``, as sorted POSIX paths relative to it."""
    found = {p.relative_to(root).as_posix() for pat in BUNDLE_PATTERNS for p in root.glob(pat)}
    return sorted(f for f in found if (root / f).is_file())


@dataclass(frozen=True, slots=True)
class Written:
    """What :func:`write_bundle` did: files written, and files already identical."""

    written: tuple[Path, ...]
    unchanged: tuple[Path, ...]


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_bundle(target: Path, *, root: Path | None = None, force: bool = False) -> Written:
    """Write every bundled file under ``target`` (created if missing), keeping the layout.

    An existing file with other content is not overwritten unless ``force``: all such files are
    named in one :class:`BundleConflict` before anything is written."""
    source = root if root is not None else bundle_root()
    if source is None:
        raise FileNotFoundError("this installation has no bundled stack files")
    files = bundled_files(source)
    conflicts = [
        target / f
        for f in files
        if (target / f).exists() and _digest(target / f) != _digest(source / f)
    ]
    if conflicts and not force:
        raise BundleConflict(conflicts)
    written: list[Path] = []
    unchanged: list[Path] = []
    for name in files:
        out = target / name
        if out.exists() and _digest(out) == _digest(source / name):
            unchanged.append(out)
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes((source / name).read_bytes())
        written.append(out)
    return Written(tuple(written), tuple(unchanged))


def otel_env_lines(
    *,
    host: str = "127.0.0.1",
    protocol: str = "http/protobuf",
    port: int | None = None,
    service_name: str | None = None,
) -> list[str]:
    """``export OTEL_...=...`` lines for an application sending to the collector at ``host``.

    ``http/protobuf`` (the package's default protocol) goes to port 4318, ``grpc`` to 4317; the
    protocol line is printed only for gRPC, so the lines work as they are either way."""
    if protocol not in ("http/protobuf", "grpc"):
        raise ValueError(f"protocol must be http/protobuf or grpc, not {protocol!r}")
    grpc = protocol == "grpc"
    chosen = port if port is not None else (4317 if grpc else 4318)
    lines = [f"export OTEL_EXPORTER_OTLP_ENDPOINT=http://{host}:{chosen}"]
    if grpc:
        lines.append("export OTEL_EXPORTER_OTLP_PROTOCOL=grpc")
    if service_name:
        lines.append(f"export OTEL_SERVICE_NAME={service_name}")
    return lines
