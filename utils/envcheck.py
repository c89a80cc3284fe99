"""The set-up check of notebook 00: is every package here, in the right kernel?

After rasbt's environment check: its users' most common problem was a notebook
running in the wrong kernel, so the check also prints which Python runs it.
"""
from __future__ import annotations

import importlib
import sys
from importlib import metadata
from pathlib import Path

from utils.paths import ROOT

#: (import name, distribution name) of what the notebooks need.
REQUIRED = [("torch", "torch"), ("numpy", "numpy"), ("matplotlib", "matplotlib"),
            ("tqdm", "tqdm"), ("ipywidgets", "ipywidgets"), ("safetensors", "safetensors"),
            ("jupyterlab", "jupyterlab"), ("utils", "how-chatgpt-learns")]
FIX = "run `make lab` (or see README: Set-up) and pick the kernel of the course's environment"


def check_package(module: str, dist: str) -> tuple[bool, str]:
    """``(ok, line)`` for one package: ``[OK] torch 2.13.0`` or ``[FAIL] ...`` with a fix."""
    try:
        importlib.import_module(module)
        version = metadata.version(dist)
    except Exception as exc:  # any import problem is a FAIL with a hint, not a traceback
        return False, f"[FAIL] {dist:20s} {type(exc).__name__}: {exc} -> {FIX}"
    return True, f"[OK]   {dist:20s} {version}"


def kernel_report() -> tuple[bool, str]:
    """Which Python runs this kernel, and is it an environment made for the course?"""
    exe = Path(sys.executable)
    in_venv = sys.prefix != getattr(sys, "base_prefix", sys.prefix)
    in_conda = (Path(sys.prefix) / "conda-meta").exists()
    ours = in_venv or in_conda
    tag = "[OK]  " if ours else "[FAIL]"
    where = "the course's .venv" if str(exe).startswith(str(ROOT / ".venv")) else (
        "a conda environment" if in_conda else "a virtual environment" if in_venv else "the system Python")
    line = f"{tag} kernel Python {sys.version.split()[0]} at {exe} ({where})"
    return ours, line + ("" if ours else f" -> {FIX}")


def check_environment(verbose: bool = True) -> bool:
    """Print one ``[OK]``/``[FAIL]`` line per package and for the kernel; return all-OK."""
    results = [check_package(m, d) for m, d in REQUIRED] + [kernel_report()]
    if verbose:
        print("\n".join(line for _, line in results))
    return all(ok for ok, _ in results)
