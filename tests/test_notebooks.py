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
    code = [c for c in cells if c["cell_type"] == "code"]
    assert SETUP_LINE.match("".join(code[0]["source"]).strip()), "first code cell must be the setup line"
    assert all(not c.get("outputs") for c in code), "store notebooks stripped (nbstripout)"
