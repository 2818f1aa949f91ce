"""LogitLens in a real JupyterLab: editing a CLIP prompt in the view recomputes the lens in the kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import canvas_digest, wait_until, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.jupyter, pytest.mark.slow]

CELLS = [
    "import torch, open_clip\n"
    "import prisma_widgets as pw\n"
    "from prisma_widgets.widgets.logit_lens import LogitLens\n"
    "from skimage import data\n"
    "torch.manual_seed(0)\n"
    "clip = open_clip.CLIP(\n"
    "    embed_dim=32, vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=16),\n"
    "    text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1))\n"
    "w = LogitLens(pw.HookedViT(clip), data.chelsea(), prompts=['a cat', 'a dog', 'grass'],\n"
    "              title='lens in lab', layer=0)\n"
    "w",
]


def test_lab_prompt_edit_recomputes_and_traits_sync(jupyter_server, lab, page, artifacts: Path):
    write_notebook(jupyter_server.root / "lens.ipynb", CELLS)
    lab.open(page, "lens.ipynb")
    lab.run_all(page)
    lab.wait_for_widgets(page, 1, artifacts, "logit_lens_lab")
    root = page.locator(".jp-OutputArea-output .pw-root").first
    assert root.locator(".pw-title").text_content() == "lens in lab"
    kc = lab.kernel_client("lens.ipynb")
    mp = root.locator("canvas.pw-ll-map")
    mp.scroll_into_view_if_needed()

    # the prompts are editable here (there is a kernel)
    first = root.locator("input.pw-ll-prompt-input").first
    assert first.get_attribute("readonly") is None
    assert "Enter" in root.locator(".pw-ll-prompt-note").text_content()

    # edit a prompt in the widget: Python's prompts change, the lens is recomputed, the map redraws
    before = canvas_digest(mp)
    first.fill("a photo of the sky")
    first.press("Enter")
    want = "['a photo of the sky', 'a dog', 'grass']"
    wait_until(lambda: lab.evaluate(kc, "w.prompts") == want, what="prompts in the kernel")
    wait_until(lambda: lab.evaluate(kc, "w.class_names[0]") == "'a photo of the sky'", what="recomputed lens")
    page.wait_for_function(
        "([el, d]) => { const c = el.getContext('2d').getImageData(0, 0, el.width, el.height).data;"
        " let s = 0; for (let i = 0; i < c.length; i += 4) s += c[i] + c[i + 1] + c[i + 2]; return s !== d; }",
        arg=[mp.element_handle(), before[1]],
        timeout=30_000,
    )
    page.wait_for_function(
        "(el) => el.querySelector('.pw-ll-table').textContent.includes('a photo of the sky')",
        arg=root.element_handle(),
        timeout=30_000,
    )
    # add a prompt from the widget
    root.get_by_role("button", name="+ prompt").click()
    new = root.locator("input.pw-ll-prompt-input").nth(3)
    new.fill("a tabby cat")
    new.press("Enter")
    wait_until(lambda: lab.evaluate(kc, "len(w.class_ids)") == "4", what="a fourth prompt in the kernel")
    page.wait_for_function(
        "(el) => el.querySelectorAll('input.pw-ll-prompt-input').length === 4", arg=root.element_handle()
    )

    # selection both ways: the view's slider and legend reach Python, Python's layer reaches the view
    root.locator("input.pw-ll-slider").fill("1")
    wait_until(lambda: lab.evaluate(kc, "w.layer") == "1", what="layer=1 in the kernel")
    root.locator("button.pw-ll-legend-item").first.click()
    wait_until(lambda: lab.evaluate(kc, "w.mode") == "'class_prob'", what="mode in the kernel")
    lab.execute(kc, "w.layer = 0; w.patch = 0; w.mode = 'entropy'")
    page.wait_for_function(
        "(el) => el.dataset.layer === '0' && el.dataset.mode === 'entropy' && el.dataset.patch === '0'",
        arg=root.element_handle(),
        timeout=30_000,
    )
    root.screenshot(path=str(artifacts / "logit_lens_lab.png"))
    assert page.pw_log.page_errors == [], page.pw_log.page_errors


COLOUR_CELLS = [
    CELLS[0].replace("prompts=['a cat', 'a dog', 'grass'],\n              title='lens in lab', layer=0)",
                     "prompts=['a photo of a cat', 'a photo of a dog', 'a photo of a car', 'a photo of grass'],\n"
                     "              show_labels=True, layer=0)"),
]


def test_lab_removing_a_prompt_keeps_the_other_colours(jupyter_server, lab, page, artifacts: Path):
    """Issue 17: colours followed prompt position, so removing one recoloured every class."""
    assert "show_labels=True" in COLOUR_CELLS[0]
    write_notebook(jupyter_server.root / "lens_colours.ipynb", COLOUR_CELLS)
    lab.open(page, "lens_colours.ipynb")
    lab.run_all(page)
    lab.wait_for_widgets(page, 1, artifacts, "logit_lens_colours_lab")
    root = page.locator(".jp-OutputArea-output .pw-root").first
    kc = lab.kernel_client("lens_colours.ipynb")

    def colours() -> dict[str, str]:
        return {
            row.locator("input").input_value(): row.locator(".pw-ll-swatch").evaluate("e => getComputedStyle(e).backgroundColor")
            for row in root.locator(".pw-ll-prompt").all()
        }

    before = colours()
    assert len(before) == 4 and len(set(before.values())) == 4
    assert root.locator("canvas.pw-ll-map").get_attribute("data-patch-labels") == '["cat","dog","car","grass"]'
    # remove the first prompt in the widget: the kernel recomputes with three, each keeps its colour
    root.locator(".pw-ll-prompt").first.get_by_role("button", name="×").click()
    wait_until(lambda: lab.evaluate(kc, "len(w.prompts)") == "3", what="three prompts in the kernel")
    page.wait_for_function("(el) => el.querySelectorAll('.pw-ll-prompt').length === 3", arg=root.element_handle(), timeout=30_000)
    page.wait_for_function(
        "(el) => el.querySelector('canvas.pw-ll-map').dataset.patchLabels === '[\"dog\",\"car\",\"grass\"]'",
        arg=root.element_handle(), timeout=30_000,
    )
    after = colours()
    assert set(after) == {"a photo of a dog", "a photo of a car", "a photo of grass"}
    assert all(after[p] == before[p] for p in after), (before, after)
    # the legend's and the table's swatches agree with the prompts'
    legend = {b.locator(".pw-ll-legend-name").text_content(): b.locator(".pw-ll-swatch").evaluate("e => getComputedStyle(e).backgroundColor")
              for b in root.locator("button.pw-ll-legend-item").all()}
    assert legend and all(legend[n] == after[n] for n in legend), (legend, after)
    assert page.pw_log.page_errors == [], page.pw_log.page_errors
