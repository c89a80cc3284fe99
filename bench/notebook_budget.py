"""Each notebook's wall time and its kernel's peak memory, run as a learner runs it (Restart & Run All).

    .venv/bin/python bench/notebook_budget.py                 # every notebook
    .venv/bin/python bench/notebook_budget.py 04 06           # some of them

Prints one markdown table (ready for the README) with the machine it ran on.
Every notebook must stay well under 2 GB (Binder's limit) and near the run time
its first cell states ("run all: ~N s"); "over" flags a run 25% slower than stated. Peak memory is the kernel's maximum resident set
size (``resource.getrusage``, read by a cell appended after the last one), so it
includes Python, torch and everything the notebook loaded. Timings depend on the
machine and on what else it runs: take them on a quiet machine.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
BINDER_LIMIT_MB = 2048
PEAK_CELL = "import resource, sys\nprint('PEAK_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"


def cpu_summary() -> str:
    """The CPU model and whether it has native bf16 (AMX or AVX-512 BF16): the two kinds the course meets."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU"
    model = re.search(r"model name\s*:\s*(.*)", info)
    flags = set(re.search(r"flags\s*:\s*(.*)", info).group(1).split()) if "flags" in info else set()
    kind = "AMX" if "amx_bf16" in flags else "AVX-512 BF16, no AMX" if "avx512_bf16" in flags else "no native bf16"
    return f"{model.group(1).strip() if model else 'unknown CPU'} ({kind})"


def stated_run_seconds(nb) -> float | None:
    """The run time the notebook states at the top: '(run all: ~N s)' or '(run all: ~N min)'."""
    for cell in nb.cells:
        m = re.search(r"run all: ~(\d+(?:\.\d+)?) (s|min)", cell.source) if cell.cell_type == "markdown" else None
        if m:
            return float(m.group(1)) * (60 if m.group(2) == "min" else 1)
    return None


def run_notebook(path: Path, timeout: int) -> tuple[float, float]:
    """(wall seconds, peak MB) of one Restart & Run All, in a fresh kernel started in notebooks/."""
    nb = nbformat.read(path, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(PEAK_CELL))
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    text = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    peak_kb = int(re.search(r"PEAK_KB (\d+)", text).group(1))
    return seconds, peak_kb / 1024


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("which", nargs="*", help="notebook numbers (e.g. 04 06); default: all")
    parser.add_argument("--timeout", type=int, default=900, help="seconds per cell")
    args = parser.parse_args(argv)
    paths = sorted(NOTEBOOKS.glob("*.ipynb"))
    if args.which:
        paths = [p for p in paths if p.name.split("_")[0] in args.which]
    print(f"machine: {cpu_summary()}; Python {sys.version.split()[0]}")
    print("\n| notebook | run time | stated | measured / stated | peak memory | under 2 GB |\n|---|---|---|---|---|---|")
    for path in paths:
        seconds, peak_mb = run_notebook(path, args.timeout)
        stated = stated_run_seconds(nbformat.read(path, as_version=4))
        ratio = "?" if stated is None else f"{seconds / stated:.2f}" + (" **over**" if seconds > 1.25 * stated else "")
        print(f"| {path.stem} | {seconds:.0f} s | {'?' if stated is None else f'{stated:.0f} s'} | {ratio} | "
              f"{peak_mb:.0f} MB | {'yes' if peak_mb < BINDER_LIMIT_MB else '**no**'} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
