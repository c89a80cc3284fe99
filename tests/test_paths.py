"""utils.paths: files are found wherever the code runs from; a missing one says how to rebuild it."""
import pytest

from utils.paths import CHECKPOINT_DIR, DATA_DIR, NOTEBOOK_DIR, ROOT, MissingDataError, read_data_file


def test_the_layout_is_where_the_repository_has_it():
    assert (ROOT / "pyproject.toml").exists() and (NOTEBOOK_DIR / "00_start_here.ipynb").exists()
    assert CHECKPOINT_DIR.parent == DATA_DIR and (DATA_DIR / "manifest.json").exists()


def test_read_data_file_reads_or_names_the_fix(tmp_path):
    assert read_data_file("manifest.json").startswith("{")
    with pytest.raises(MissingDataError, match=r"nope.txt is missing.*`make data`"):
        read_data_file("nope.txt", tmp_path)
