"""The tutorials' offline notice is one line that says what stands in and the fix (issue 17, item 12): the first
cells of tutorial 01 run offline in a real kernel, and the notice, rendered by nbconvert's lab template (as the
docs render notebooks) in a 1000 px window, is one line (it was a five-line paragraph with the hub's error text in
it). The lab template's prompt column leaves about 660 px of text at 800 px: there the line wraps once."""

from __future__ import annotations

from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.notebooks]

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def notice_cell(tmp_path_factory: pytest.TempPathFactory):
    import os

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "tutorials" / "01_attention_heads.ipynb", as_version=4)
    first_code = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"][:2]
    nb.cells = [nb.cells[i] for i in first_code]
    env = {"PRISMA_WIDGETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1"}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path_factory.mktemp("nb"))}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.update({k: v})
    return nb


def test_offline_notice_is_one_line_with_the_fix(notice_cell, new_page, tmp_path: Path, artifacts: Path):
    from nbconvert import HTMLExporter

    outputs = notice_cell.cells[1].outputs
    notices = [o for o in outputs if "text/markdown" in o.get("data", {})]
    assert len(notices) == 1, outputs
    text = notices[0]["data"]["text/markdown"]
    assert "\n" not in text.strip() and len(text) < 140, text
    assert "mouse-vit" in text and "vit_base_patch16_224" in text and "unset PRISMA_WIDGETS_OFFLINE" in text
    assert not any(noise in text for noise in ("Error", "http", "huggingface", "(")), text
    assert not any(o.get("name") == "stderr" for o in outputs), outputs  # the warning is not printed as well
    html, _ = HTMLExporter(template_name="lab").from_notebook_node(notice_cell)
    page_path = tmp_path / "notice.html"
    page_path.write_text(html, encoding="utf-8")
    page = new_page(offline=True)
    page.set_viewport_size({"width": 1000, "height": 600})
    page.goto(page_path.as_uri())
    para = page.locator(".jp-RenderedMarkdown p", has_text="replaces").first
    lines = para.evaluate("(p) => p.getBoundingClientRect().height / parseFloat(getComputedStyle(p).lineHeight)")
    out = artifacts / "i17a" / "after"
    out.mkdir(parents=True, exist_ok=True)
    para.screenshot(path=str(out / "tutorial_notice_1000.png"))
    assert lines <= 1.2, f"the notice takes {lines:.1f} lines at 1000 px"
