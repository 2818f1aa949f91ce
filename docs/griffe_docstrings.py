"""Griffe extension for the API pages: reads the package's docstrings as they are written.

- Doctests are titled ``Example:``, which the Google parser would render as a note of plain text: they are
  read as an ``Examples:`` section, so the ``>>>`` lines render as code.
- Sphinx roles (``:class:`HookedViT```, ``:func:``, ``:meth:``, ``:data:``) render as inline code.

The source keeps its conventions; only the docs build sees the rewrite.
"""

from __future__ import annotations

import re
from typing import Any

import griffe

_EXAMPLE = re.compile(r"^(\s*)Example:\s*$", re.M)
_ROLE = re.compile(r":(?:class|func|meth|data|attr|mod|obj|exc):`~?")


class ReadAsWritten(griffe.Extension):
    def on_instance(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            text = _EXAMPLE.sub(r"\1Examples:", obj.docstring.value)
            obj.docstring.value = _ROLE.sub("`", text)
