"""utils.plots: every figure is labelled, with the floor drawn where it belongs."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from utils.plots import COURSE_STYLE, floor_line, new_figure, use_course_style  # noqa: E402


def test_course_style_is_applied():
    use_course_style()
    assert all(matplotlib.rcParams[k] == v for k, v in COURSE_STYLE.items() if k != "figure.figsize")


def test_new_figure_labels_axes_and_floor_line_is_in_the_legend():
    ax = new_figure("Loss", "step", "loss (nats per token)", logy=True)
    floor_line(ax, 0.45)
    assert (ax.get_title(), ax.get_xlabel(), ax.get_ylabel()) == ("Loss", "step", "loss (nats per token)")
    assert ax.get_yscale() == "log"
    assert ax.get_lines()[0].get_label() == "entropy floor (0.450)"
    plt.close("all")
