"""Every notebook has a title, learning goals, a time budget and the setup line."""
import json
import re

import pytest

from utils.paths import NOTEBOOK_DIR

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
SETUP_LINE = re.compile(r"^from utils import setup; setup\(seed=\d+\)$")


def test_notebooks_exist_and_are_numbered():
    assert NOTEBOOKS, "no notebooks found"
    for nb in NOTEBOOKS:
        assert re.match(r"^([0-9]{2}|A[0-9])_[a-z0-9_]+\.ipynb$", nb.name), nb.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_has_title_goals_budget_and_setup_first(path):
    cells = json.loads(path.read_text())["cells"]
    first_md = "".join(cells[0]["source"])
    assert first_md.startswith(f"# {path.name[:2]} "), "first cell: '# NN · Title'"
    markdown = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    assert "Learning goals" in markdown
    assert re.search(r"\*\*Time budget:\*\* about \d+ minutes?", markdown)
    # the measured Run All time, in the form bench/notebook_budget.py reads and compares
    assert re.search(r"\(run all: ~\d+(?:\.\d+)? (s|min)\b", markdown), "state '(run all: ~N s)' or '~N min'"
    code = [c for c in cells if c["cell_type"] == "code"]
    assert SETUP_LINE.match("".join(code[0]["source"]).strip()), "first code cell must be the setup line"
    assert all(not c.get("outputs") for c in code), "store notebooks stripped (nbstripout)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_reference_solutions_sit_in_collapsed_solution_cells(path):
    """An exercise is the learner's cell, then a collapsed cell tagged `solution` (student copies drop
    those): a learner never reads a solution by accident, and the test suite still runs it."""
    cells = json.loads(path.read_text())["cells"]
    for i, cell in enumerate(cells):
        source = "".join(cell["source"])
        if "solution" in cell.get("metadata", {}).get("tags", []):
            assert cell["metadata"].get("jupyter", {}).get("source_hidden"), f"cell {i}: collapse it"
            if cell["cell_type"] == "code":
                assert source.startswith("# Reference solution"), f"cell {i}: say what the hidden cell is"
                assert "check_exercise(" in source, f"cell {i}: the solution must run the exercise's check"
            else:
                assert source.startswith("<details>"), f"cell {i}: a written answer goes in <details>"
        elif cell["cell_type"] == "code":
            assert "reference solution" not in source.lower(), f"cell {i}: a solution outside a solution cell"
