"""FeatureGallery in a real JupyterLab: a click on a card sets `feature` in Python, Python's `feature` reaches
the view, paging asks the kernel for the new cards, and a patch click and a steering click are answered by the
kernel."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import wait_until as _wait
from .conftest import write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.jupyter, pytest.mark.slow]

CELLS = [
    (
    "import torch\n"
    "import prisma_widgets as pw\n"
    "from prisma_widgets.zoo.shapes import shapes\n"
    "torch.manual_seed(0)\n"
    "model = pw.load('mouse-vit')\n"
    "sae = pw.SAE(d_in=128, d_sae=32, k=6, hook='blocks.3.hook_resid_post')\n"
    "images, labels = shapes(24, seed=3)\n"
    "w = pw.FeatureGallery(model, sae, images, title='gallery in lab', page_size=6, hide_dead=False)\n"
    "w"
    ),
]


def test_lab_card_click_sets_feature_and_traits_sync(jupyter_server, lab, page, artifacts: Path):
    write_notebook(jupyter_server.root / "gallery.ipynb", CELLS)
    lab.open(page, "gallery.ipynb")
    lab.run_all(page)
    lab.wait_for_widgets(page, 1, artifacts, "feature_gallery_lab")
    root = page.locator(".jp-OutputArea-output .pw-root").first
    assert root.locator(".pw-title").text_content() == "gallery in lab"
    kc = lab.kernel_client("gallery.ipynb")
    assert lab.evaluate(kc, "w.feature") == "-1"

    # click a card: Python's feature follows and the kernel sends its detail
    card = root.locator(".pw-fg-card").nth(2)
    card.scroll_into_view_if_needed()
    want = card.get_attribute("data-feature")
    card.locator(".pw-fg-card-head").click()
    _wait(lambda: lab.evaluate(kc, "w.feature") == want, what="feature in the kernel")
    _wait(lambda: lab.evaluate(kc, "w.detail_features") == f"[{want}]", what="detail in the kernel")
    page.wait_for_function(
        "(el) => el.querySelector('.pw-fg-detail-title').textContent === 'feature #' + el.dataset.feature"
        " && !el.querySelector('.pw-fg-detail-stats').textContent.includes('loading')",
        arg=root.element_handle(),
        timeout=30_000,
    )

    # Python sets the feature: the view follows
    lab.execute(kc, "w.feature = 7")
    page.wait_for_function("(el) => el.dataset.feature === '7'", arg=root.element_handle(), timeout=30_000)

    # the next page: the view reports it, the kernel sends those cards
    root.locator("button.pw-fg-next").click()
    _wait(lambda: lab.evaluate(kc, "w.page") == "1", what="page=1 in the kernel")
    _wait(lambda: lab.evaluate(kc, "w.card_features == w.visible and len(w.visible) == 6") == "True", what="cards of page 2")
    page.wait_for_function(
        "(el) => el.querySelectorAll('.pw-fg-card').length === 6 && !el.querySelector('.pw-fg-card.pw-fg-loading')",
        arg=root.element_handle(),
        timeout=30_000,
    )

    # a patch click asks the kernel for the features active there
    top = root.locator("canvas.pw-fg-top")
    top.scroll_into_view_if_needed()
    box = top.bounding_box()
    page.mouse.click(box["x"] + 20, box["y"] + 20)
    _wait(lambda: lab.evaluate(kc, "len(w.patch_query)") == "2", what="patch_query in the kernel")
    _wait(lambda: lab.evaluate(kc, "w.patch_result.get('image') == w.patch_query[0]") == "True", what="patch result")
    page.wait_for_function(
        "(el) => el.querySelectorAll('.pw-fg-patch-feature').length > 0", arg=root.element_handle(), timeout=30_000
    )

    # steering: "x2" asks the kernel, which reruns the model and sends the probabilities before and after
    double = root.locator("button.pw-fg-steer-double")
    double.scroll_into_view_if_needed()
    double.click()
    _wait(lambda: lab.evaluate(kc, "w.steer_request.get('op') == 'scale'") == "True", what="steer_request in the kernel")
    _wait(lambda: lab.evaluate(kc, "len(w.steer_result.get('classes', []))") == "5", what="steer_result")
    page.wait_for_function(
        "(el) => el.querySelectorAll('.pw-fg-steer-row').length === 5", arg=root.element_handle(), timeout=30_000
    )
    steer_text = root.locator(".pw-fg-steer").text_content()
    assert "×2" in steer_text and "no class moved" in steer_text  # patches after the last block: the CLS reads none
    root.screenshot(path=str(artifacts / "feature_gallery_lab.png"))
    assert page.pw_log.page_errors == [], page.pw_log.page_errors
