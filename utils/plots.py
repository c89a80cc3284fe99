"""One look for every figure in the course: labelled axes, units, a grid."""
from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt

COURSE_STYLE = {
    "figure.figsize": (6.4, 3.8),
    "figure.dpi": 100,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "font.size": 10,
    "legend.frameon": False,
}


def use_course_style() -> None:
    """Apply the course's matplotlib style (called by ``utils.setup``)."""
    matplotlib.rcParams.update(COURSE_STYLE)


def new_figure(title: str, xlabel: str, ylabel: str, ax=None, logx=False, logy=False):
    """A labelled axes: every course figure says what its axes are, with units."""
    if ax is None:
        _, ax = plt.subplots()
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    return ax


def floor_line(ax, value: float, label: str = "entropy floor") -> None:
    """Draw the data's entropy floor as a dashed line on a loss plot."""
    ax.axhline(value, color="black", linestyle="--", linewidth=1, label=f"{label} ({value:.3f})")
