"""A Panel app for workshops: the widgets with no notebook.

Run it with ``python -m prisma_widgets.app`` (``--port``, ``--host``, ``--show``), or with Panel's own
server: ``panel serve "$(python -c 'import prisma_widgets.app as a; print(a.SERVE_FILE)')"``.
Needs the ``app`` extra (``pip install "prisma-widgets[app]"``); ``import prisma_widgets`` never imports Panel.
"""

from __future__ import annotations

import pathlib

from .workshop import WorkshopApp, build_app

#: the file to hand to ``panel serve``
SERVE_FILE = pathlib.Path(__file__).with_name("__main__.py")

__all__ = ["SERVE_FILE", "WorkshopApp", "build_app"]
