"""The package's shape: data flows one way through ``utils/``, and ``tests/`` mirrors it.

Each module is one idea of the course's flow, world -> ... -> build. A module may
import only modules before it in ``FLOW`` -- lazy imports inside functions
included -- so a newcomer can read the package top to bottom.
"""
import ast

import pytest

from utils.paths import ROOT

#: The flow of ideas. Side branches (probe: notebook 04's measurements; induction:
#: notebook 05's toy model) sit where their inputs are ready; notebook 09's privacy, feedback
#: database and users follow RLHF; speedrun chains the whole recipe after build. The last three
#: are tools around the course (the quiz, the set-up check, the JupyterLab launcher).
FLOW = ["paths", "plots", "repro", "checks", "world", "chats", "gold", "text", "attention", "model",
        "logprobs", "sampling", "train", "pretrain", "probe", "induction", "chat", "sft", "evaluate",
        "reward", "rlhf", "privacy", "feedback", "users", "checkpoints", "build", "speedrun", "quiz", "envcheck", "lab"]
MODULES = sorted(p.stem for p in (ROOT / "utils").glob("*.py") if p.stem != "__init__")


def utils_imports(module: str) -> set[str]:
    """Every ``utils.<name>`` a module imports, at the top or inside a function."""
    tree = ast.parse((ROOT / "utils" / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("utils"):
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("utils.")}
    return found - {module}


def test_every_module_has_its_place_in_the_flow():
    assert sorted(FLOW) == MODULES, "add a new utils module to FLOW, where its idea comes in the course"


@pytest.mark.parametrize("module", MODULES)
def test_no_import_against_the_flow(module):
    later = {m for m in utils_imports(module) if m in FLOW and FLOW.index(m) > FLOW.index(module)}
    assert not later, f"utils.{module} imports {sorted(later)}, which come later in the flow"


@pytest.mark.parametrize("module", MODULES)
def test_every_module_has_a_test_file_named_after_it(module):
    assert (ROOT / "tests" / f"test_{module}.py").exists()
