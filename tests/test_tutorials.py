"""Every tutorial runs top to bottom on the bundled offline models (nbclient, a real ipykernel)."""

from __future__ import annotations

from pathlib import Path

import pytest

TUTORIALS = sorted((Path(__file__).resolve().parents[1] / "tutorials").glob("*.ipynb"))


@pytest.mark.notebooks
@pytest.mark.parametrize("path", TUTORIALS, ids=[p.stem for p in TUTORIALS])
def test_tutorial_runs_top_to_bottom(path, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("PRISMA_WIDGETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    errors = [
        output for cell in notebook.cells if cell.cell_type == "code"
        for output in cell.get("outputs", []) if output.get("output_type") == "error"
    ]
    assert not errors
    # A tutorial shows something: every code cell that ends in an expression has an output.
    assert sum(bool(c.get("outputs")) for c in notebook.cells if c.cell_type == "code") >= 2


def test_there_is_a_quickstart():
    assert any(p.name == "00_quickstart.ipynb" for p in TUTORIALS)


def test_readme_example_runs():
    """The README's Python example works as written, offline."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = re.findall(r"```python\n(.*?)```", readme, flags=re.S)[0]
    scope: dict = {}
    exec(compile(example, "README.md", "exec"), scope)  # noqa: S102
    assert tuple(scope["cache"]["blocks.3.attn.hook_pattern"].shape) == (4, 4, 65, 65)
