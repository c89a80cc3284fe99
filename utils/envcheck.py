"""The set-up check of notebook 00: is every package here, in the right version, in the right kernel?

After rasbt's environment check: its users' most common problem was a notebook
running in the wrong kernel, so the check also prints which Python runs it.

What to check is read from the installed course's own metadata (``pip install -e .`` records
pyproject.toml's ``[project].dependencies`` there), so this list can never drift from pyproject.toml.
"""
from __future__ import annotations

import importlib
import re
import sys
from importlib import metadata
from pathlib import Path

from utils.paths import ROOT

#: The course's distribution; its import name is ``utils``.
DIST = "how-chatgpt-learns"
#: Distribution name -> import name, where they differ (otherwise: the name with ``-`` as ``_``).
IMPORT_NAMES = {"how-chatgpt-learns": "utils", "pyyaml": "yaml"}
FIX = "run `make lab` (or see README: Set-up) and pick the kernel of the course's environment"
INSTALL_FIX = "run `make lab`, or `pip install -e .` in the repository folder with this kernel's Python"


def canonical(name: str) -> str:
    """PEP 503 name: ``Jupyter_Server`` and ``jupyter-server`` are one distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def import_name(dist: str) -> str:
    """The module to import for distribution ``dist``."""
    return IMPORT_NAMES.get(canonical(dist), canonical(dist).replace("-", "_"))


def required_packages(dist: str = DIST) -> list[tuple[str, str, str]]:
    """``(module, distribution, specifier)`` of the course itself and of every runtime requirement.

    Requirements behind an extra (``extra == "test"``) are skipped: the notebooks do not need them.
    Raises ``PackageNotFoundError`` when ``dist`` is not installed in this Python.
    """
    from packaging.requirements import Requirement  # jupyterlab and ipykernel depend on it

    own = [(import_name(dist), dist, "")]
    reqs = [Requirement(line) for line in metadata.requires(dist) or []]
    runtime = [r for r in reqs if r.marker is None or r.marker.evaluate({"extra": ""})]
    return own + [(import_name(r.name), r.name, str(r.specifier)) for r in runtime]


def satisfies(version: str, spec: str) -> bool:
    """Does ``version`` meet ``spec``? Pre-releases count (we check what is installed, not pick one)."""
    from packaging.specifiers import SpecifierSet

    return SpecifierSet(spec).contains(version, prereleases=True)


def check_package(module: str, dist: str, spec: str = "") -> tuple[bool, str]:
    """``(ok, line)`` for one package: ``[OK] torch 2.13.0`` or ``[FAIL] ...`` with a fix."""
    try:
        importlib.import_module(module)
        version = metadata.version(dist)
        ok = not spec or satisfies(version, spec)
    except Exception as exc:  # any import problem is a FAIL with a hint, not a traceback
        return False, f"[FAIL] {dist:20s} {type(exc).__name__}: {exc} -> {FIX}"
    if not ok:
        return False, f"[FAIL] {dist:20s} {version} installed, the course needs {spec} -> {FIX}"
    return True, f"[OK]   {dist:20s} {version}"


def requirement_checks(dist: str = DIST) -> list[tuple[bool, str]]:
    """One ``(ok, line)`` per requirement; a single [FAIL] when the course itself is not installed."""
    try:
        required = required_packages(dist)
    except metadata.PackageNotFoundError:
        return [(False, f"[FAIL] {dist:20s} not installed in this Python ({sys.executable}), so its "
                        f"requirements cannot be checked -> {INSTALL_FIX}")]
    except ImportError as exc:  # no `packaging`: the environment is broken beyond one package
        return [(False, f"[FAIL] {'packaging':20s} {type(exc).__name__}: {exc} -> {FIX}")]
    return [check_package(module, name, spec) for module, name, spec in required]


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
    results = requirement_checks(DIST) + [kernel_report()]
    if verbose:
        print("\n".join(line for _, line in results))
    return all(ok for ok, _ in results)
