"""Where the course's files live, wherever the notebook is run from, and how to read them."""
from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
CHECKPOINT_DIR = DATA_DIR / "checkpoints"
NOTEBOOK_DIR = ROOT / "notebooks"


class MissingDataError(FileNotFoundError):
    """A data file is missing; the message names the command that rebuilds it."""


def read_data_file(name: str, data_dir: Path | None = None) -> str:
    """The text of ``data/<name>`` (or ``data_dir/<name>``); a missing file says how to rebuild it."""
    path = Path(data_dir or DATA_DIR) / name
    if not path.exists():
        raise MissingDataError(f"{path} is missing. Rebuild the course data with `make data` "
                               f"(or `python -m utils.build data`) from the repository root.")
    return path.read_text(encoding="utf-8")
