"""environment.yml (conda/Binder) and pyproject.toml (pip) name the same packages."""
import re

import tomllib
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from utils.paths import ROOT

CONDA_TO_PIP = {"pytorch-cpu": "torch"}
NOT_PACKAGES = {"python", "pip"}


def pip_requirements() -> dict:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["test"]
    return {Requirement(r).name.lower(): Requirement(r).specifier for r in reqs}


def conda_requirements() -> dict:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    out = {}
    for dep in env["dependencies"]:
        assert isinstance(dep, str), "no pip: section in environment.yml (it would pull CUDA torch)"
        name, spec = re.match(r"([A-Za-z0-9_.-]+)\s*(.*)", dep).groups()
        if name not in NOT_PACKAGES:
            out[CONDA_TO_PIP.get(name, name).lower()] = SpecifierSet(spec)
    return out


def test_same_packages_in_both():
    assert set(pip_requirements()) == set(conda_requirements())


def test_ranges_are_compatible_and_bounded():
    conda = conda_requirements()
    for name, pip_spec in pip_requirements().items():
        pinned = [s.version for s in pip_spec if s.operator == "=="]
        if pinned:  # torch: the exact pip pin must lie inside the conda range
            assert conda[name].contains(pinned[0]), name
        else:
            assert pip_spec == conda[name], f"{name}: pip {pip_spec} vs conda {conda[name]}"
        assert any(s.operator in ("<", "<=", "==") for s in pip_spec), f"{name} needs an upper bound"


def test_conda_uses_cpu_torch_and_no_pip_section():
    text = (ROOT / "environment.yml").read_text()
    assert "pytorch-cpu" in text and not re.search(r"^\s*-\s*torch\b", text, re.M)
