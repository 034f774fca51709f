"""Figures of an evaluation report, drawn on Agg canvases.

Figures are built with :class:`matplotlib.figure.Figure` and an explicit Agg canvas rather than
``pyplot``: nothing global is switched (a notebook's backend stays as it was), nothing is kept
alive in pyplot's figure manager, and it works on a headless server. matplotlib is imported
inside the functions so importing the evaluation package stays light.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["report_figures"]


# Margins in inches, fixed: each axes has one line of tick labels and a label on either axis
# and a title on top, so their room is known before anything is drawn, and saving a figure
# needs no layout pass (a layout engine and a tight bounding box measured every artist at each
# save, most of a training run's plotting time). The left margin of a chart labelled by name
# (policies, subgroups) is measured from its widest label.
_LEFT, _RIGHT, _BOTTOM, _TOP = 0.85, 0.2, 0.6, 0.4
_BETWEEN_COLUMNS, _BETWEEN_ROWS = 0.9, 0.9
_TICK_ROOM = 0.2  # ticks and their padding beside a named label


def _figure(width: float, height: float, rows: int = 1, cols: int = 1):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height))
    FigureCanvasAgg(figure)
    axes = figure.subplots(rows, cols, squeeze=False)
    _margins(figure, rows, cols)
    return figure, axes.ravel()


def _margins(figure, rows: int, cols: int, *, left: float = _LEFT, bottom: float = _BOTTOM):
    """Place the ``rows`` x ``cols`` axes with the fixed margins (``left`` and ``bottom`` in
    inches; the left one at most half the figure, as a layout engine would shrink the axes)."""
    width, height = figure.get_size_inches()
    left = min(left, width / 2)
    panel_width = (width - left - _RIGHT - (cols - 1) * _BETWEEN_COLUMNS) / cols
    panel_height = (height - bottom - _TOP - (rows - 1) * _BETWEEN_ROWS) / rows
    figure.subplots_adjust(
        left=left / width,
        right=1 - _RIGHT / width,
        bottom=bottom / height,
        top=1 - _TOP / height,
        wspace=_BETWEEN_COLUMNS / panel_width,
        hspace=_BETWEEN_ROWS / panel_height,
    )


def _label_width(figure, labels, size) -> float:
    """Inches the widest of ``labels`` takes at font ``size``, measured without drawing."""
    from matplotlib.font_manager import FontProperties

    renderer = figure.canvas.get_renderer()
    font = FontProperties(size=size)
    widths = [
        renderer.get_text_width_height_descent(str(label), font, ismath=False)[0]
        for label in labels
    ]
    return max(widths, default=0.0) / figure.dpi


def _grid(count: int) -> tuple[int, int]:
    cols = min(count, 3)
    return max(math.ceil(count / max(cols, 1)), 1), max(cols, 1)


def policy_value_figure(report):
    table = report.policy_values
    figure, (ax,) = _figure(7, 0.45 * len(table) + 1.5)
    y = np.arange(len(table))[::-1]
    est = table["estimate"].to_numpy()
    err = np.vstack([est - table["lower"].to_numpy(), table["upper"].to_numpy() - est])
    colours = [
        "tab:blue" if p == "learned" else "tab:green" if p == "oracle" else "tab:gray"
        for p in table.index
    ]
    ax.barh(y, est, xerr=np.nan_to_num(err), color=colours, capsize=3)
    if "true_value" in table.columns:
        ax.scatter(table["true_value"], y, marker="D", color="black", zorder=3, label="true value")
        ax.legend(loc="lower right")
    names = [p.replace("all:", "all ") for p in table.index]
    ax.set_yticks(y, names)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"EE points avoided per person vs usual care ({report.level}% CI)")
    ax.set_title("Doubly robust policy values")
    size = ax.yaxis.get_ticklabels()[0].get_fontsize() if names else 10
    _margins(figure, 1, 1, left=_label_width(figure, names, size) + _TICK_ROOM)
    return figure


def qini_figure(report):
    arms = list(report.qini_curves)
    rows, cols = _grid(len(arms))
    figure, axes = _figure(4 * cols, 3.2 * rows, rows, cols)
    for ax, arm in zip(axes, arms):
        curve = report.qini_curves[arm]
        ax.plot(curve["fraction"], curve["qini"], label="model")
        ax.plot(curve["fraction"], curve["random"], ls="--", color="gray", label="random")
        if "oracle" in curve.columns:
            ax.plot(
                curve["fraction"],
                curve["oracle"],
                ls=":",
                color="tab:green",
                label="oracle ranking",
            )
        q = report.qini.loc[arm]
        ax.set_title(f"{arm}: Qini {q.qini:.3f} ({q.lower:.3f} to {q.upper:.3f})", fontsize=9)
        ax.set_xlabel("fraction treated (most predicted benefit first)")
        ax.set_ylabel("EE points avoided per person")
        ax.legend(fontsize=7)
    for ax in axes[len(arms) :]:
        ax.set_visible(False)
    return figure


def calibration_figure(report):
    arms = list(report.calibration_slopes.index)
    rows, cols = _grid(len(arms))
    figure, axes = _figure(4 * cols, 3.2 * rows, rows, cols)
    bins = report.calibration
    for ax, arm in zip(axes, arms):
        part = bins[bins["arm"] == arm]
        err = np.vstack([part["observed"] - part["lower"], part["upper"] - part["observed"]])
        ax.errorbar(
            part["predicted"], part["observed"], yerr=np.nan_to_num(err), fmt="o", capsize=2
        )
        low = float(np.nanmin([part["predicted"].min(), part["lower"].min()]))
        high = float(np.nanmax([part["predicted"].max(), part["upper"].max()]))
        ax.plot([low, high], [low, high], ls="--", color="gray")
        slope = report.calibration_slopes.loc[arm, "estimate"]
        # No slope when the predicted effects hardly vary (e.g. one effect for everyone).
        ax.set_title(
            f"{arm}: slope {slope:.2f}" if np.isfinite(slope) else f"{arm}: slope not estimable",
            fontsize=9,
        )
        ax.set_xlabel("mean predicted effect")
        ax.set_ylabel("mean doubly robust effect")
    for ax in axes[len(arms) :]:
        ax.set_visible(False)
    return figure


def subgroup_figure(report):
    table = report.subgroups
    shown = table[~table["suppressed"]]
    figure, (ax,) = _figure(7, 0.3 * max(len(shown), 1) + 1.5)
    y = np.arange(len(shown))[::-1]
    est = shown["policy_value"].to_numpy(dtype=float)
    err = np.vstack(
        [est - shown["lower"].to_numpy(dtype=float), shown["upper"].to_numpy(dtype=float) - est]
    )
    ax.errorbar(est, y, xerr=np.nan_to_num(err), fmt="o", capsize=2)
    names = [f"{g}: {c}" for g, c in zip(shown["grouping"], shown["cell"])]
    ax.set_yticks(y, names, fontsize=7)
    ax.axvline(0, color="black", lw=0.8)
    hidden = int(table["suppressed"].sum())
    # two lines: one would be wider than the figure
    ax.set_xlabel(
        f"learned policy: EE points avoided per person ({report.level}% CI);\n"
        f"{hidden} cell(s) suppressed: too small, or giving one away"
    )
    ax.set_title("Policy value by subgroup")
    left = _label_width(figure, names, 7) + _TICK_ROOM
    _margins(figure, 1, 1, left=left, bottom=_BOTTOM + 0.2)
    return figure


def report_figures(report) -> dict:
    """All figures of ``report`` by name."""
    figures = {"policy_values": policy_value_figure(report)}
    if report.qini_curves:
        figures["qini"] = qini_figure(report)
    if len(report.calibration_slopes):
        figures["calibration"] = calibration_figure(report)
    if report.subgroups is not None and len(report.subgroups):
        figures["subgroups"] = subgroup_figure(report)
    return figures
