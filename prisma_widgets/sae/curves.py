"""Live training curves (loss, explained variance, L0, dead fraction) in a notebook, drawn with Bokeh."""

from __future__ import annotations


class LiveCurves:
    """Bokeh training curves that update in a notebook; silently absent elsewhere."""

    def __init__(self, enabled: bool) -> None:
        self.ok = False
        if not enabled:
            return
        try:
            from IPython import get_ipython

            shell = get_ipython()
            if shell is None or "IPKernelApp" not in shell.config:
                print("show_curves: not in a notebook, curves skipped (the progress bar still reports)")
                return
            from bokeh.io import output_notebook, push_notebook, show
            from bokeh.layouts import row
            from bokeh.models import ColumnDataSource
            from bokeh.plotting import figure

            output_notebook(hide_banner=True)
            self.source = ColumnDataSource({"step": [], "loss": [], "ev": [], "l0": [], "dead": []})
            figs = []
            for key, title in (("loss", "loss"), ("ev", "explained variance"), ("l0", "L0"), ("dead", "dead fraction")):
                fig = figure(title=title, width=260, height=200, tools="pan,wheel_zoom,reset")
                fig.line("step", key, source=self.source)
                figs.append(fig)
            self.push = push_notebook
            self.handle = show(row(*figs), notebook_handle=True)
            self.ok = True
        except Exception as err:  # noqa: BLE001 - curves are a nicety; training goes on
            print(f"show_curves: could not draw curves ({type(err).__name__}: {err})")

    def add(self, step: int, m: dict[str, float]) -> None:
        if not self.ok:
            return
        try:
            self.source.stream({"step": [step], **{key: [m[key]] for key in ("loss", "ev", "l0", "dead")}})
            self.push(handle=self.handle)
        except Exception:  # noqa: BLE001
            self.ok = False
