"""A non-editable `pip install .` works from any directory: the `shufflenas` command and the
configs shipped as package data. Installed into a temporary target, never into this environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
def _packages() -> tuple:
    """The packages pyproject.toml ships (one list: a new package needs no change here)."""
    import re

    text = (ROOT / "pyproject.toml").read_text()
    return tuple(re.findall(r'"([a-z_]+)"', re.search(r"^packages = \[(.*?)\]", text, re.M).group(1)))


SOURCES = ("pyproject.toml", "README.md") + _packages()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """`pip install --no-deps --target T` of a clean copy of the sources (no build files in the repo)."""
    src, target = tmp_path_factory.mktemp("src"), tmp_path_factory.mktemp("site")
    for name in SOURCES:
        copy = shutil.copytree if (ROOT / name).is_dir() else shutil.copy2
        copy(ROOT / name, src / name, **({"ignore": shutil.ignore_patterns("__pycache__")}
                                         if (ROOT / name).is_dir() else {}))
    flags = ["--no-build-isolation"] if _setuptools_major() >= 64 else []  # offline when possible
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *flags,
                           "--target", str(target), str(src)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return target


def _setuptools_major() -> int:
    try:
        import setuptools
    except ImportError:
        return 0  # pip builds in isolation, fetching setuptools as pyproject.toml asks
    return int(setuptools.__version__.split(".")[0])


def _run(installed: Path, cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(installed)  # only the installed copy, not this checkout
    return subprocess.run(list(argv), cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_console_script_and_shipped_configs_from_another_directory(installed, tmp_path):
    script = installed / "bin" / "shufflenas"
    done = _run(installed, tmp_path, str(script), "info", "x0_5")
    assert done.returncode == 0 and "1,365,792 trainable" in done.stdout, done.stderr[-2000:]
    helped = _run(installed, tmp_path, str(script), "--help")
    assert helped.returncode == 0 and helped.stdout.startswith("usage: shufflenas")
    listed = {line.split()[0] for line in helped.stdout.splitlines() if line.startswith("    ")}
    assert {"search", "export", "report", "info", "latency", "lut", "proxy"} <= listed, helped.stdout
    bad = _run(installed, tmp_path, str(script), "info", "x9_9")
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    code = ("import space, search\n"
            "from space import SearchSpace\n"
            "from search import load_config\n"
            "from common.cli import config_path\n"
            "cfg = load_config('configs/search/demo_cpu.yaml')\n"
            "print(space.__file__)\n"
            "print(config_path(cfg.space))\n"
            "print(SearchSpace.from_yaml(cfg.space).size(), SearchSpace.default().size())\n")
    shipped = _run(installed, tmp_path, sys.executable, "-c", code)
    assert shipped.returncode == 0, shipped.stderr[-2000:]
    module, space_file, sizes = shipped.stdout.strip().splitlines()[-3:]
    assert module.startswith(str(installed)) and space_file.startswith(str(installed / "configs" / "spaces"))
    assert int(sizes.split()[1]) == 392_806_008
