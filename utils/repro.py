"""Reproducibility: one call seeds every random generator and fixes threads.

Same seed, same numbers, on every re-run. ``setup`` is the first line of
every notebook; ``seed_everything`` goes right before each init/train/sample
cell so that a cell gives the same result however often it is re-run.
"""
from __future__ import annotations

import os
import random
from contextlib import contextmanager

import numpy as np
import torch

#: At most this many threads for torch: a 2-core laptop, Binder and CI all
#: have two cores, and more threads than cores makes training *slower*.
MAX_THREADS = 2


def seed_everything(seed: int = 0) -> None:
    """Seed Python's ``random``, NumPy and torch (CPU) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def n_threads() -> int:
    """Threads torch should use here: the cores this process may run on, at most 2.

    Set the environment variable ``COURSE_THREADS`` to override (e.g. ``1`` on a
    machine where other programs keep the cores busy: two threads that wait for
    each other on busy cores can be several times slower than one).
    """
    if os.environ.get("COURSE_THREADS"):
        return max(1, int(os.environ["COURSE_THREADS"]))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows
        cores = os.cpu_count() or 1
    return max(1, min(MAX_THREADS, cores))


@contextmanager
def torch_threads(n: int):
    """Run the block with ``n`` torch threads, then restore the previous setting.

    Tiny models (notebook 05's) train faster on one thread: their matrices are
    too small to share between cores, and a second thread only waits.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def bf16_is_fast() -> bool:
    """True on CPUs with native bfloat16 matmuls (AMX or AVX-512 BF16).

    Elsewhere bf16 autocast is emulated and *slower* than float32, so the course
    only turns it on where this says so. Decided from CPU flags, not timing, so
    the same machine always makes the same choice.
    """
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def pick_device(prefer: str = "cpu") -> torch.device:
    """The device the course runs on: the CPU unless you ask otherwise.

    The course is sized for a laptop CPU; asking for "cuda" or "mps" works
    where one exists, but numbers may then differ slightly from the notebook's.
    """
    if prefer == "cuda" and torch.cuda.is_available():
        return torch.device("cuda")
    if prefer == "mps" and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def setup(seed: int = 0, quiet: bool = False) -> None:
    """Seed everything, fix torch's thread count and plot style; print what was set.

    Returns nothing, so the first cell of a notebook shows one line, not the device's repr.
    """
    threads = n_threads()
    torch.set_num_threads(threads)
    seed_everything(seed)
    from utils.plots import use_course_style
    use_course_style()
    device = pick_device()
    if not quiet:
        print(f"seed={seed}  torch {torch.__version__}  threads={threads}  device={device}")
