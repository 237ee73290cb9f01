"""Compile a C++ kernel source of this project into a shared library, once per machine.

The library is cached under ``$SHUFFLENAS_CACHE/kernels`` (default ``~/.cache/shufflenas``),
named by a hash of the source, the compiler's version, the flags and the MindSpore version,
so a change to any of them builds afresh. Each process compiles to a private temporary name
and renames it into place (atomic on one file system), so several processes starting at once
(msrun ranks, search workers) never load a half-written file.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CACHE_VAR = "SHUFFLENAS_CACHE"
COMPILER = "g++"
# Portable: no -march=native (a cache folder may be shared by different CPUs). -fopenmp-simd
# honours the kernels' simd pragmas without OpenMP threads.
FLAGS = ("-O3", "-fopenmp-simd", "-shared", "-fPIC")
_BUILD_TIMEOUT_S = 300


class KernelBuildError(RuntimeError):
    """The library could not be built; the message says why in one line."""


def cache_dir() -> Path:
    root = os.environ.get(CACHE_VAR) or os.path.join(os.path.expanduser("~"), ".cache", "shufflenas")
    return Path(root) / "kernels"


def _compiler_version(compiler: str) -> str:
    try:
        proc = subprocess.run([compiler, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as exc:
        raise KernelBuildError(f"cannot run {compiler}: {exc}") from None
    if proc.returncode != 0 or not proc.stdout.strip():
        raise KernelBuildError(f"{compiler} --version failed")
    return proc.stdout.strip().splitlines()[0]


def library_path(source: Path) -> Path:
    """Path of the compiled ``source``, building it first if it is not cached yet."""
    import mindspore

    compiler = shutil.which(COMPILER)
    if compiler is None:
        raise KernelBuildError(f"no C++ compiler ({COMPILER}) on PATH")
    text = source.read_bytes()
    key = hashlib.sha256(b"\0".join([text, _compiler_version(compiler).encode(), " ".join(FLAGS).encode(),
                                     mindspore.__version__.encode()])).hexdigest()[:16]
    target = cache_dir() / f"{source.stem}-{key}.so"
    if target.is_file():
        return target.resolve()
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=".so", dir=target.parent)
        os.close(fd)
    except OSError as exc:
        raise KernelBuildError(f"cannot write the kernel cache {target.parent}: {exc.strerror or exc}") from None
    try:
        proc = subprocess.run([compiler, *FLAGS, "-o", tmp, str(source)], capture_output=True, text=True,
                              timeout=_BUILD_TIMEOUT_S)
        if proc.returncode != 0:
            lines = [line for line in proc.stderr.splitlines() if "error" in line] or proc.stderr.splitlines()
            raise KernelBuildError(f"{COMPILER} failed on {source.name}: {(lines or ['no output'])[0].strip()}")
        os.chmod(tmp, 0o755)  # mkstemp made it private; the cache may be shared
        os.replace(tmp, target)
    except subprocess.TimeoutExpired:
        raise KernelBuildError(f"{COMPILER} took more than {_BUILD_TIMEOUT_S} s on {source.name}") from None
    except OSError as exc:
        raise KernelBuildError(f"cannot build {source.name}: {exc.strerror or exc}") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target.resolve()
