"""Notebook 00's set-up check: it checks exactly what pyproject.toml requires, and every [FAIL] says what to do."""
import importlib.util
from importlib import metadata

import pytest
from packaging.requirements import Requirement

from utils import envcheck
from utils.envcheck import check_environment, check_package, required_packages, requirement_checks
from utils.paths import ROOT


def pyproject_dependencies() -> dict:
    tomllib = pytest.importorskip("tomllib", reason="tomllib is in the standard library from Python 3.11")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {envcheck.canonical(Requirement(r).name): str(Requirement(r).specifier) for r in project["dependencies"]}


def test_every_runtime_dependency_of_pyproject_is_checked_with_its_range():
    """If this fails after editing pyproject.toml, reinstall (`make setup`): the check reads the installed metadata."""
    checked = {envcheck.canonical(dist): spec for _, dist, spec in required_packages()}
    assert checked.pop("how-chatgpt-learns") == ""  # the course's own `utils` package
    assert checked == pyproject_dependencies()
    assert "ipykernel" in checked and "pytest" not in checked  # the kernel yes, test extras no


def test_each_check_imports_the_module_its_distribution_provides():
    providers = metadata.packages_distributions()
    for module, dist, _ in required_packages():
        assert importlib.util.find_spec(module) is not None, module
        assert envcheck.canonical(dist) in map(envcheck.canonical, providers.get(module, [])), (module, dist)


def test_environment_check_passes_here(capsys):
    assert check_environment(verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("[OK]") for line in lines)
    assert len(lines) == len(pyproject_dependencies()) + 2  # + the course itself + the kernel line


def test_missing_module_fails_with_the_fix():
    ok, line = check_package("no_such_module_xyz", "no-such-dist")
    assert not ok and line.startswith("[FAIL]") and "ModuleNotFoundError" in line and "make lab" in line


def test_version_outside_the_range_fails_with_the_fix():
    ok, line = check_package("numpy", "numpy", ">=999")
    assert not ok and line.startswith("[FAIL]") and "the course needs >=999" in line and "make lab" in line
    assert check_package("numpy", "numpy", "<999")[0]


def test_local_version_label_satisfies_an_exact_pin():
    assert envcheck.satisfies("2.13.0+cpu", "==2.13.0")  # torch's CPU wheels


def test_course_not_installed_is_one_clear_fail(monkeypatch, capsys):
    [(ok, line)] = requirement_checks("no-such-course-xyz")
    assert not ok and line.startswith("[FAIL] no-such-course-xyz") and "not installed" in line
    assert "make lab" in line and "pip install -e ." in line
    monkeypatch.setattr(envcheck, "DIST", "no-such-course-xyz")
    assert check_environment(verbose=True) is False
    assert "Traceback" not in capsys.readouterr().out
