"""Live training curves (loss, explained variance, L0, dead fraction) in a notebook, drawn with Bokeh.

A notebook executed to be rendered without a kernel (``PRISMA_WIDGETS_STATIC_HTML=1``: the docs' tutorials)
gets the same four curves once training ends, as inline SVG: Bokeh's notebook output would load BokehJS from
its CDN there, and its live updates never reach a saved notebook.
"""

from __future__ import annotations

import html
import os

# the same switch as prisma_widgets.widgets.standalone.STATIC_HTML_ENV (read here: sae does not import widgets)
STATIC_HTML_ENV = "PRISMA_WIDGETS_STATIC_HTML"
PANELS = (("loss", "loss"), ("ev", "explained variance"), ("l0", "L0"), ("dead", "dead fraction"))


def curves_svg(history: list[tuple[int, dict[str, float]]], width: int = 240, height: int = 150) -> str:
    """The four curves of ``history`` ((step, metrics) pairs) as one inline ``<svg>``: a line per panel, its title,
    the first and last step and the range of values as text.

    >>> "<polyline" in curves_svg([(1, {"loss": 1.0, "ev": 0.1, "l0": 9.0, "dead": 0.0}),
    ...                            (2, {"loss": 0.5, "ev": 0.6, "l0": 8.0, "dead": 0.0})])
    True
    """
    pad, top = 30, 22
    parts = []
    steps = [s for s, _ in history]
    for i, (key, title) in enumerate(PANELS):
        x0 = i * (width + 10)
        values = [float(m[key]) for _, m in history]
        lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
        span, s0, s1 = (hi - lo) or 1.0, (steps[0] if steps else 0), (steps[-1] if steps else 1)
        points = " ".join(
            f"{x0 + pad + (s - s0) / ((s1 - s0) or 1) * (width - pad - 6):.1f},"
            f"{top + (1 - (v - lo) / span) * (height - top - 20):.1f}"
            for s, v in zip(steps, values)
        )
        parts.append(
            f'<text x="{x0 + pad}" y="14" font-weight="600">{html.escape(title)}</text>'
            f'<rect x="{x0 + pad}" y="{top}" width="{width - pad - 6}" height="{height - top - 20}" fill="none" '
            'stroke="currentColor" stroke-opacity="0.25"/>'
            f'<polyline points="{points}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>'
            f'<text x="{x0 + 2}" y="{top + 8}">{hi:.3g}</text><text x="{x0 + 2}" y="{height - 20}">{lo:.3g}</text>'
            f'<text x="{x0 + pad}" y="{height - 4}">step {s0}</text>'
            f'<text x="{x0 + width - 6}" y="{height - 4}" text-anchor="end">{s1}</text>'
        )
    total = len(PANELS) * (width + 10)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="{height}" font-size="10" '
            f'font-family="system-ui, sans-serif" fill="currentColor" role="img" '
            f'aria-label="training curves">{"".join(parts)}</svg>')


class LiveCurves:
    """Bokeh training curves that update in a notebook; silently absent elsewhere."""

    def __init__(self, enabled: bool) -> None:
        self.ok = False
        self.static = False
        self.history: list[tuple[int, dict[str, float]]] = []
        if not enabled:
            return
        try:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is None or "IPKernelApp" not in shell.config:
                print("show_curves: not in a notebook, curves skipped (the progress bar still reports)")
                return
            if os.environ.get(STATIC_HTML_ENV, "") == "1":
                self.static = True  # drawn once, by finish()
                return
            from bokeh.io import output_notebook, push_notebook, show
            from bokeh.layouts import row
            from bokeh.models import ColumnDataSource
            from bokeh.plotting import figure

            output_notebook(hide_banner=True)
            self.source = ColumnDataSource({"step": [], "loss": [], "ev": [], "l0": [], "dead": []})
            figs = []
            for key, title in PANELS:
                fig = figure(title=title, width=260, height=200, tools="pan,wheel_zoom,reset")
                fig.line("step", key, source=self.source)
                figs.append(fig)
            self.push = push_notebook
            self.handle = show(row(*figs), notebook_handle=True)
            self.ok = True
        except Exception as err:  # noqa: BLE001 - curves are a nicety; training goes on
            print(f"show_curves: could not draw curves ({type(err).__name__}: {err})")

    def add(self, step: int, m: dict[str, float]) -> None:
        if self.static:
            self.history.append((step, {key: float(m[key]) for key, _ in PANELS}))
            return
        if not self.ok:
            return
        try:
            self.source.stream({"step": [step], **{key: [m[key]] for key in ("loss", "ev", "l0", "dead")}})
            self.push(handle=self.handle)
        except Exception:  # noqa: BLE001
            self.ok = False

    def finish(self) -> None:
        """Training ended: a static render gets its curves now (the live ones were updated all along)."""
        if not self.static or not self.history:
            return
        from IPython.display import HTML, display

        display(HTML(curves_svg(self.history)))
        self.static = False
