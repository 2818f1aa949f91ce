"""PatchingHeatmap widget: its traits hold the engine's result exactly, selection syncs both ways,
changing site/by/method recomputes, the panel's predictions are the patched model's, and the painted
corruption runs a new sweep through the kernel round trip."""

from __future__ import annotations

import doctest
import json
import re

import numpy as np
import pytest
import torch
import traitlets

import prisma_widgets as pw
from prisma_widgets import zoo
from prisma_widgets.analysis.corrupt import corrupt
from prisma_widgets.analysis.patching import SITES
from prisma_widgets.widgets import patching_heatmap
from prisma_widgets.widgets._base import decode_array
from prisma_widgets.widgets.patching_heatmap import PatchingHeatmap
from prisma_widgets.zoo.shapes import shapes_with_patches

HOSTILE = "</script><img src=x onerror=alert(1)>"


@pytest.fixture(scope="module")
def mouse():
    return pw.load("mouse-vit")


@pytest.fixture(scope="module")
def pair():
    images, classes = zoo.shapes(2, seed=1)  # a triangle and a cross
    return images[0], images[1]


@pytest.fixture(scope="module")
def widget(mouse, pair):
    return PatchingHeatmap(mouse, *pair)


def independent_top_k(model, clean, corrupted, site, layer, index, k=5):
    """The patched run, written here from scratch: one hook, one full forward, softmax top-k."""
    suffix = SITES[site][0]
    name = f"blocks.{layer}.{suffix}"
    with torch.no_grad():
        _, cache = model.run_with_cache(model.to_pixels(clean), names_filter=[name])

        def put(act, hook):
            act = act.clone()
            act[index] = cache[name][index]
            return act

        out = model.run_with_hooks(model.to_pixels(corrupted), fwd_hooks=[(name, put)])
    p = out.double().softmax(-1)[0]
    top = p.topk(k)
    return top.indices.tolist(), top.values.numpy()


def test_traits_hold_the_result_exactly(widget, mouse, pair):
    result = pw.analysis.patch(mouse, *pair, progress=False)
    v = decode_array(widget.values)
    assert widget.values["dtype"] == "float32" and v.shape == (4, 65)
    np.testing.assert_array_equal(v, result.values.numpy())  # bit for bit: no quantisation
    assert widget.axes == ["layer", "position"] and widget.layer_indices == [0, 1, 2, 3]
    assert widget.token_labels == mouse.token_labels() and widget.grid == [8, 8] and widget.n_prefix_tokens == 1
    assert widget.clean_metric == pytest.approx(result.clean_metric) and widget.site == "resid_pre"
    assert widget.class_names == list(zoo.SHAPE_CLASSES) and widget.colormap == "rdbu"
    np.testing.assert_array_equal(decode_array(widget.image_pixels), mouse.display_images(pair[0])[0])
    np.testing.assert_array_equal(decode_array(widget.corrupted_pixels), mouse.display_images(pair[1])[0])
    assert len(widget.corruption_patches) > 0 and widget.interactive
    # the default selection is the cell with the largest |effect|
    lp = widget.layer_indices.index(widget.selected["layer"])
    assert abs(v[lp, widget.selected["position"]]) == np.abs(v).max()
    # every cell's patched top-k came with the exact sweep
    assert decode_array(widget.cell_top_indices).shape == (4, 65, 5)


def test_panel_predictions_are_the_patched_model(widget, mouse, pair):
    for layer, position in [(0, 1), (1, 30), (3, 0), (2, 44)]:
        widget.set_state({"selected": {"layer": layer, "position": position}})  # as a click in the view
        got = widget.cell_predictions()["patched"]
        idx, probs = independent_top_k(mouse, *pair, "resid_pre", layer, (slice(None), position))
        assert [g["index"] for g in got] == idx
        np.testing.assert_allclose([g["prob"] for g in got], probs, atol=2e-5)
        assert got[0]["label"] == zoo.SHAPE_CLASSES[idx[0]]
    clean = widget.cell_predictions()["clean"]
    with torch.no_grad():
        want = mouse(mouse.to_pixels(pair[0])).double().softmax(-1)[0].topk(5)
    assert [c["index"] for c in clean] == want.indices.tolist()


def test_on_demand_predictions_without_a_table(mouse, pair):
    """Beyond max_precomputed_cells, each click computes the selected cell in the kernel."""
    w = PatchingHeatmap(mouse, *pair, site="z", by="head", max_precomputed_cells=0)
    assert w.cell_top_indices == {} and w.axes == ["layer", "head"]
    w.set_state({"selected": {"layer": 2, "head": 3}})
    assert w.selected_top["layer"] == 2 and w.selected_top["cell"] == 3
    idx, probs = independent_top_k(mouse, *pair, "z", 2, (slice(None), slice(None), 3))
    assert w.selected_top["indices"] == idx
    np.testing.assert_allclose(w.selected_top["probs"], probs, atol=2e-5)
    # the engine agrees with its own result for that cell
    np.testing.assert_array_equal(w.values_array(), pw.analysis.patch(mouse, *pair, site="z", by="head",
                                                                      progress=False).values.numpy())


def test_selected_round_trip_and_validation(widget):
    widget.selected = {"layer": 2, "position": 9}
    assert widget.get_state("selected")["selected"] == {"layer": 2, "position": 9}
    widget.set_state({"selected": {"layer": 1, "position": 64}})
    assert widget.selected == {"layer": 1, "position": 64}
    for bad in ({"layer": 7, "position": 0}, {"layer": 0, "position": 65}, {"layer": 0}, {"layer": 0, "head": 1}):
        with pytest.raises(traitlets.TraitError):
            widget.selected = bad
    assert widget.selected == {"layer": 1, "position": 64}
    for name, bad in [("site", "resid"), ("by", "token"), ("method", "fast"), ("normalization", "x"),
                      ("corruption_mode", "shuffle")]:
        with pytest.raises(traitlets.TraitError):
            setattr(widget, name, bad)


def test_changing_site_by_method_recomputes(mouse, pair):
    w = PatchingHeatmap(mouse, *pair, layers=[0, 2])
    w.site = "z"  # from Python (the view sets it the same way)
    ref = pw.analysis.patch(mouse, *pair, site="z", layers=[0, 2], progress=False)
    np.testing.assert_array_equal(w.values_array(), ref.values.numpy())
    assert w.layer_indices == [0, 2] and w.progress == 1.0 and w.status == ""
    w.set_state({"by": "head"})
    ref = pw.analysis.patch(mouse, *pair, site="z", by="head", layers=[0, 2], progress=False)
    np.testing.assert_array_equal(w.values_array(), ref.values.numpy())
    assert w.axes == ["layer", "head"] and set(w.selected) == {"layer", "head"} and w.head_labels[0] == "H0"
    w.set_state({"method": "attribution"})
    ref = pw.analysis.patch(mouse, *pair, site="z", by="head", layers=[0, 2], method="attribution", progress=False)
    np.testing.assert_array_equal(w.values_array(), ref.values.numpy())
    assert w.cell_top_indices == {} and w.selected_top["indices"]  # the clicked cell is computed on demand
    # a site without heads: by falls back to position, and the view is told
    w.site = "resid_mid"
    assert w.by == "position" and "by='position'" in w.status and w.values_array().shape == (2, 65)
    # a by that does not apply to the site is refused; the old result stays
    before = w.values_array().copy()
    w.by = "head"
    assert w.by == "position" and "does not apply" in w.status
    np.testing.assert_array_equal(w.values_array(), before)


def test_painted_corruption_runs_a_new_sweep(mouse, pair):
    w = PatchingHeatmap(mouse, *pair, layers=[0, 3])
    seen = []
    w.observe(lambda c: seen.append(c["new"]), "progress")
    clean_img = decode_array(w.image_pixels)
    _, _, grids = shapes_with_patches(2, seed=1)  # the same images as zoo.shapes(2, seed=1)
    obj = [int(k) for k in np.flatnonzero(grids[0] > 0)]
    before = w.values_array().copy()
    w.set_state({"corruption_patches": obj, "corruption_mode": "blur", "run_count": 1})  # the Run button
    corrupted = corrupt(clean_img, [divmod(k, 8) for k in obj], mode="blur", grid=(8, 8))
    ref = pw.analysis.patch(mouse, clean_img, corrupted, layers=[0, 3], progress=False)
    np.testing.assert_array_equal(w.values_array(), ref.values.numpy())
    assert not np.array_equal(w.values_array(), before)
    np.testing.assert_array_equal(decode_array(w.corrupted_pixels), corrupted)
    assert w.corruption_patches == obj and w.result.clean_metric == pytest.approx(ref.clean_metric)
    assert seen and seen[-1] == 1.0 and all(0 <= s <= 1 for s in seen)
    # nothing painted: refused, with a message
    w.set_state({"corruption_patches": [], "run_count": 2})
    assert "paint" in w.status
    np.testing.assert_array_equal(w.values_array(), ref.values.numpy())


def test_save_html_precomputes_predictions_and_disables_kernel_controls(mouse, pair, tmp_path):
    w = PatchingHeatmap(mouse, *pair, method="attribution", title=HOSTILE, labels=[HOSTILE] + list(zoo.SHAPE_CLASSES[1:]))
    assert w.cell_top_indices == {}
    path = w.save_html(tmp_path / "p.html")
    text = path.read_text()
    payload = json.loads(re.search(r'<script type="application/json" class="pw-state">(.*?)</script>', text, re.S).group(1))
    state = payload["state"]
    assert payload["widget"] == "patching_heatmap" and state["method"] == "attribution"
    assert state["interactive"] is False and "no kernel" in state["note"]
    assert state["class_names"][0] == HOSTILE and "<img src=x" not in text
    assert decode_array(w.cell_top_indices).shape == (4, 65, 5)  # every cell, from an exact sweep
    assert w.interactive and w.note == ""  # the live widget is unchanged
    # too many cells: only the selected one, and the page says so
    big = PatchingHeatmap(mouse, *pair, max_precomputed_cells=10)
    big.save_html(tmp_path / "q.html")
    saved = json.loads(re.search(r'class="pw-state">(.*?)</script>', (tmp_path / "q.html").read_text(), re.S).group(1))
    assert "only for the cell selected" in saved["state"]["predictions_note"]
    assert saved["state"]["selected_top"]["indices"]  # the selected cell's predictions are in the page


def test_from_result_and_errors(mouse, pair):
    result = pw.analysis.patch(mouse, *pair, progress=False, site="pattern", by="head_position")
    w = PatchingHeatmap.from_result(result, pair[0], pair[1], title="from arrays")
    assert w.axes == ["layer", "position", "head"] and w.grid == [8, 8] and w.n_prefix_tokens == 1
    np.testing.assert_array_equal(w.values_array(), result.values.numpy())
    assert not w.interactive and "model" in w.note and len(w.corruption_patches) > 0
    assert set(w.selected) == {"layer", "position", "head"}
    w.site = "z"  # no model: refused, the view is told
    assert w.site == "pattern" and "need a model" in w.status
    assert w.cell_predictions()["patched"] == []
    live = PatchingHeatmap.from_result(result, pair[0], pair[1], model=mouse)
    assert live.interactive and live.by == "head_position"
    np.testing.assert_array_equal(live.values_array(), result.values.numpy())
    with pytest.raises(ValueError, match="same image at the same size"):
        PatchingHeatmap(mouse, pair[0], np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(ValueError, match="one image"):
        PatchingHeatmap(mouse, np.stack(pair), np.stack(pair))
    with pytest.raises(ValueError, match="does not apply"):
        PatchingHeatmap(mouse, *pair, site="resid_pre", by="head")
    with pytest.raises(ValueError, match="corrupted"):
        PatchingHeatmap(mouse, pair[0])
    with pytest.raises(TypeError, match="no option"):
        PatchingHeatmap.from_result(result, colour="red")


def test_clip_with_prompts_reads_out_classes():
    import open_clip

    torch.manual_seed(0)
    clip = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=16),
        text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1),
    )
    model = pw.HookedViT(clip)
    images, _ = zoo.shapes(2, seed=3, size=32)
    w = PatchingHeatmap(model, images[0], images[1], prompts=["a circle", "a star", "a ring"], top_k=3)
    assert w.class_names == ["a circle", "a star", "a ring"] and len(w.clean_top["indices"]) == 3
    assert decode_array(w.cell_top_indices).shape == (2, 17, 3)
    bare = PatchingHeatmap(model, images[0], images[1])
    assert bare.class_names == [] and bare.cell_top_indices == {}


def test_docstring_example_runs():
    result = doctest.testmod(patching_heatmap, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


def test_a_failed_run_says_why_and_what_to_do_and_swap_runs(mouse, tmp_path):
    """A corruption that leaves the top class is refused with the view's fix ('swap' or more patches) in
    ``error``; the old result stays; ``swap`` takes the painted patches from the corrupted image given."""
    clean, corrupted, (a, b), changed = zoo.shape_pair(seed=0)
    w = PatchingHeatmap(mouse, clean, corrupted, layers=[0, 3])
    first = w.values_array().copy()
    assert w.error == "" and w.corruption_patches == changed  # the pair differs only at the shape
    background = [i for i in range(64) if i not in changed][:4]
    assert not w.run_corruption(background, mode="mask")
    assert "Not run" in w.error and zoo.SHAPE_CLASSES[a] in w.error and "'swap'" in w.error
    assert w.status == w.error and w.progress == 0.0
    np.testing.assert_array_equal(w.values_array(), first)
    assert w.run_corruption(changed, mode="swap") and w.error == ""
    swapped = corrupt(clean, [divmod(k, 8) for k in changed], mode="swap", other=corrupted, grid=(8, 8))
    np.testing.assert_array_equal(decode_array(w.corrupted_pixels), swapped)
    ref = pw.analysis.patch(mouse, clean, swapped, layers=[0, 3], progress=False)
    np.testing.assert_array_equal(w.values_array(), ref.values.numpy())
    assert w.corruption_mode == "swap" and w.corrupted_top["indices"][0] == b
    # nothing painted: an error too, and a saved page never carries one
    assert not w.run_corruption([]) and "paint" in w.error
    assert '"error":""' in w.save_html(tmp_path / "p.html").read_text()
