"""Build hook: copy the observability stack's files into the wheel (pixel_llm_otel/_stack/).

Everything else about the package is in pyproject.toml. What is bundled is the list
BUNDLE_PATTERNS of pixel_llm_otel/_stack_bundle.py, loaded here by path (it needs only the
standard library); `pixel-llm-otel stack write DIR` writes the files out again.
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _bundle_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "_stack_bundle", HERE / "pixel_llm_otel" / "_stack_bundle.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


class BuildPyWithStack(build_py):
    """build_py, plus the stack's files under <build_lib>/pixel_llm_otel/_stack/."""

    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads them from the checkout
        bundle = _bundle_module()
        target = Path(self.build_lib) / "pixel_llm_otel" / bundle.BUNDLE_DIR
        files = bundle.bundled_files(HERE)
        if not files:
            raise RuntimeError("no stack files found to bundle (collector/, dashboards/)")
        for name in files:
            out = target / name
            out.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(HERE / name, out)


setup(cmdclass={"build_py": BuildPyWithStack})
