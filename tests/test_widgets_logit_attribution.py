"""LogitAttribution widget: what it sends is the attribution exactly, its traits sync both ways, the kernel
adds position maps and recomputes CLIP prompts; pw.link moves linked widgets; pw.save_html keeps the links."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import traitlets
from conftest import build

import prisma_widgets as pw
from prisma_widgets.analysis import direct_logit_attribution
from prisma_widgets.widgets.page import page_payload


@pytest.fixture(scope="module")
def mouse():
    return pw.load("mouse-vit")


@pytest.fixture(scope="module")
def scene():
    return pw.zoo.scenes(1, seed=2).images[0]


def test_arrays_are_the_attribution(mouse, scene):
    w = pw.LogitAttribution(mouse, scene)
    dla = direct_logit_attribution(mouse, [scene], by_position=True, position_classes=list(range(8)))
    assert w.labels == dla.labels and w.n_layers == 4 and w.n_heads == 4
    assert w.class_names == mouse.labels and w.target == int(dla.target[0]) and w.versus == -1
    np.testing.assert_allclose(w.values(), dla.values[0].numpy(), atol=1e-6)
    assert abs(float(w.values().sum()) - w.logit()) < 1e-4 and abs(w.logit() - float(dla.logit[0])) < 1e-6
    # every class travels: a pair is a difference of columns, no kernel needed
    pair = direct_logit_attribution(mouse, [scene], target=(2, 5))
    np.testing.assert_allclose(w.values(2, 5), pair.values[0].numpy(), atol=1e-5)
    # position maps of every class of a small vocabulary, and the pooled attention
    assert w.position_class_ids == list(range(8))
    for label in ("L3H1", "L2 MLP", "embed", "bias"):
        np.testing.assert_allclose(w.position_map(label), dla.class_by_position[0, w.target, :, dla.index(label)].numpy(),
                                   atol=1e-6)
    attention = w.pooled_attention
    assert attention["shape"] == [4, 4, 65]
    # the selection starts on the head with the largest contribution
    heads = dla.head_values()[0].abs()
    assert (w.layer, w.head, w.part) == tuple(int(i) for i in divmod(int(heads.argmax()), 4)) + ("head",)


def test_traits_validate_and_follow_python(mouse, scene):
    w = pw.LogitAttribution(mouse, scene, target=("circle", "square"), cell_size=30)
    assert (w.target, w.versus) == (0, 1) and w.cell_size == 30
    for name, bad in (("target", 8), ("versus", -2), ("layer", 4), ("head", 4)):
        with pytest.raises(traitlets.TraitError):
            setattr(w, name, bad)
    with pytest.raises(traitlets.TraitError):
        w.part = "neuron"
    w.part = "mlp"
    w.head = 2  # choosing a head from Python selects it
    assert w.part == "head"
    with pytest.raises(TypeError, match="no option"):
        pw.LogitAttribution(mouse, scene, colour="red")
    with pytest.raises(ValueError, match="one image"):
        pw.LogitAttribution(mouse, [scene, scene])


def test_a_large_vocabulary_sends_maps_for_the_top_classes_and_the_kernel_adds_more(chelsea):
    model = build("vit_tiny_patch16_224")
    w = pw.LogitAttribution(model, chelsea, max_position_classes=3)
    assert len(w.class_names) == 1000 and len(w.position_class_ids) == 3 and w.target in w.position_class_ids
    assert w.component_values["shape"] == [len(w.labels), 1000]
    missing = next(c for c in range(1000) if c not in w.position_class_ids)
    assert w.position_map("L1H0", missing) is None
    w.target = missing  # as the view's picker does
    assert missing in w.position_class_ids and w.status == ""
    dla = direct_logit_attribution(model, [chelsea], target=missing, by_position=True)
    np.testing.assert_allclose(w.position_map("L1H0"), dla.by_position[0, :, dla.index("L1H0")].numpy(), atol=1e-6)


def test_clip_prompts_are_editable_in_the_kernel(scene):
    clip = pw.load("mouse-clip")
    prompts = ["a photo of a circle", "a photo of a heart"]
    w = pw.LogitAttribution(clip, scene, prompts=prompts)
    assert w.prompts_editable and w.prompts == prompts == w.class_names
    new = prompts + ["a photo of a star"]
    w.set_state({"prompts": new})  # as the front end does
    assert w.class_names == new and w.component_values["shape"][1] == 3 and w.status == ""
    dla = direct_logit_attribution(clip, [scene], prompts=new, target=w.target)
    np.testing.assert_allclose(w.values(), dla.values[0].numpy(), atol=1e-5)
    w.prompts = ["a cat", " "]
    assert w.prompts == new and "text" in w.status
    with pytest.raises(ValueError, match="scores against text"):
        pw.LogitAttribution(clip, scene)


def test_from_arrays_and_the_saved_page(mouse, scene, tmp_path):
    dla = direct_logit_attribution(mouse, [scene], target="star", by_position=True, position_classes=[3])
    w = pw.LogitAttribution.from_arrays(dla, mouse.display_images([scene])[0], title="</script><b>t</b>")
    assert w.target == 3 and w.prompts_editable is False
    np.testing.assert_allclose(w.values(), dla.values[0].numpy(), atol=1e-6)
    w.target = 0  # no kernel: the heatmap follows, the maps are absent for this class
    assert w.position_map("L3H1") is None
    path = w.save_html(tmp_path / "dla.html")
    text = path.read_text()
    assert "</script><b>" not in text
    state = json.loads(re.search(r'class="pw-state">(.*?)</script>', text, re.S).group(1))["state"]
    assert state["title"] == "</script><b>t</b>" and state["prompts_editable"] is False


def test_link_moves_grid_and_heatmap_in_the_kernel(mouse, scene):
    dla = pw.LogitAttribution(mouse, scene)
    grid = pw.AttentionGrid(mouse, scene, layers=[1, 2, 3])
    images, _ = pw.zoo.shapes(2, seed=1)
    heads = pw.PatchingHeatmap(mouse, images[0], images[1], site="z", by="head")
    links = pw.link(dla, grid, heads)
    try:
        dla.layer, dla.head = 2, 3
        assert (grid.layer, grid.head) == (2, 3) and heads.selected == {"layer": 2, "head": 3}
        heads.selected = {"layer": 1, "head": 0}
        assert (dla.layer, dla.head, grid.layer, grid.head) == (1, 0, 1, 0)
        dla.part = "mlp"  # not a head: nobody moves
        dla.layer = 3
        assert (grid.layer, heads.selected["layer"]) == (1, 1)
        dla.layer, dla.head = 0, 1  # a layer the grid does not show: the grid stays, the heatmap follows
        assert (grid.layer, grid.head) == (1, 0) and heads.selected == {"layer": 0, "head": 1}
        heads.by = "position"  # cells are positions now: no heads to follow
        dla.head = 2
        assert "head" not in heads.selected
    finally:
        for link in links:
            link.unlink()
    dla.head = 3
    assert grid.head == 0
    with pytest.raises(TypeError, match="no head selection"):
        pw.link(dla, pw.LogitLens(mouse, scene))


def test_save_html_holds_several_widgets_and_their_links(mouse, scene, tmp_path):
    dla = pw.LogitAttribution(mouse, scene, title="dla")
    grid = pw.AttentionGrid(mouse, scene)
    lone = pw.AttentionGrid(mouse, scene, layers=[0])
    links = pw.link(dla, grid)
    path = pw.save_html([dla, grid, lone], tmp_path / "page.html")
    payload = page_payload(path)
    assert [w["widget"] for w in payload["widgets"]] == ["logit_attribution", "attention_grid", "attention_grid"]
    assert payload["links"] == [{"source": 0, "target": 1, "both_ways": True}]
    assert payload["widgets"][0]["head_link"]["also_set"] == {"part": "head"}
    text = path.read_text()
    assert len(re.findall(r"<script>", text)) == 3  # two widget bundles (one per kind) and the page script
    assert "default-src 'none'" in text
    with pytest.raises(ValueError, match="not on this page"):
        pw.save_html([dla], tmp_path / "x.html", links=links)
    for link in links:
        link.unlink()
    assert page_payload(pw.save_html([dla, grid], tmp_path / "unlinked.html"))["links"] == []
    with pytest.raises(TypeError, match="widgets"):
        pw.save_html([], tmp_path / "none.html")
