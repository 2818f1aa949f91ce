"""Patching on the bundled mouse-vit (trained on synthetic shapes), where the answer is known.

* Swap the patches holding the objects of a clean image and of another class's image: the corrupted image
  shows the other shape. Patching the object patches back (layer 0 residual stream) restores the clean run
  exactly; patching only the clean object's own patches restores the clean class in most pairs.
* Attribution patching (one forward, one backward) against exact patching on the cells that matter
  (|exact effect| >= 0.1): the fraction with the same sign, pooled over several images.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.zoo.shapes import shapes_with_patches

#: pooled sign agreement measured on the six images below: 0.774 (137 of 177 cells with |exact| >= 0.1)
SIGN_AGREEMENT_MIN = 0.75
#: clean class restored by patching only the clean object's patches: measured 8 of 8 pairs (deterministic)
OWN_PATCH_RESTORE_MIN = 8


@pytest.fixture(scope="module")
def mouse():
    return pw.load("mouse-vit")


@pytest.fixture(scope="module")
def data():
    return shapes_with_patches(24, seed=11)


def _pairs(labels: list[int], n: int) -> list[tuple[int, int]]:
    """Disjoint (clean, other) index pairs of different classes."""
    pairs, used = [], set()
    for i in range(len(labels)):
        for j in range(len(labels)):
            if i != j and labels[i] != labels[j] and not {i, j} & used:
                pairs.append((i, j))
                used |= {i, j}
                break
        if len(pairs) == n:
            break
    return pairs


def _patch_positions(model, clean_px, corrupted_px, positions) -> torch.Tensor:
    """Clean residual stream at ``positions`` (token indices) into the corrupted run, at layer 0."""
    name = "blocks.0.hook_resid_pre"
    _, cache = model.run_with_cache(clean_px, names_filter=[name])
    index = torch.as_tensor(positions)

    def put(act, hook):
        act = act.clone()
        act[:, index] = cache[name][:, index]
        return act

    return model.run_with_hooks(corrupted_px, fwd_hooks=[(name, put)])


@torch.no_grad()
def test_patching_object_patches_restores_the_clean_class(mouse, data):
    images, labels, patch_labels = data
    restored_own = 0
    pairs = _pairs(labels, 8)
    assert len(pairs) == 8
    for i, j in pairs:
        own, other = patch_labels[i] > 0, patch_labels[j] > 0
        objects = own | other
        corrupted = pw.corrupt(images[i], objects, mode="swap", other=images[j], grid=(8, 8))
        clean_px, corrupted_px = mouse.to_pixels(images[i]), mouse.to_pixels(corrupted)
        clean_out, corrupted_out = mouse(clean_px), mouse(corrupted_px)
        assert clean_out.argmax().item() == labels[i]
        assert corrupted_out.argmax().item() == labels[j], "the swap shows the other class's shape"
        # every object patch back at layer 0: the clean run, exactly (only those patches differ)
        tokens = [1 + int(k) for k in np.flatnonzero(objects)]  # token 0 is CLS
        out = _patch_positions(mouse, clean_px, corrupted_px, tokens)
        torch.testing.assert_close(out, clean_out, atol=1e-4, rtol=1e-4)
        # only the clean object's own patches: the clean class usually wins back
        out = _patch_positions(mouse, clean_px, corrupted_px, [1 + int(k) for k in np.flatnonzero(own)])
        restored_own += int(out.argmax().item() == labels[i])
    print(f"clean class restored from the clean object's own patches: {restored_own} of {len(pairs)} pairs")
    assert restored_own >= OWN_PATCH_RESTORE_MIN, restored_own


def test_attribution_agrees_in_sign_with_exact_on_the_cells_that_matter(mouse, data):
    images, labels, patch_labels = data
    agree = total = 0
    used = 0
    for i in range(len(images)):
        corrupted = pw.corrupt(images[i], patch_labels[i] > 0, mode="mask", grid=(8, 8))
        with torch.no_grad():
            if mouse(mouse.to_pixels(corrupted)).argmax().item() == labels[i]:
                continue  # masking did not change the class: nothing to restore
        exact = pw.analysis.patch(mouse, images[i], corrupted, progress=False).values
        approx = pw.analysis.patch(mouse, images[i], corrupted, progress=False, method="attribution").values
        assert approx.shape == exact.shape == (4, 65)
        matters = exact.abs() >= 0.1
        agree += int((torch.sign(exact[matters]) == torch.sign(approx[matters])).sum())
        total += int(matters.sum())
        used += 1
        if used == 6:
            break
    assert used == 6 and total >= 40, (used, total)
    fraction = agree / total
    print(f"sign agreement: {fraction:.3f} ({agree} of {total} cells with |exact| >= 0.1, {used} images)")
    assert fraction >= SIGN_AGREEMENT_MIN, fraction


def test_widget_on_the_mouse_restores_in_the_panel(mouse, data):
    """The widget's painted corruption (mask the object) and the panel's patched prediction at layer 0."""
    from prisma_widgets.widgets.patching_heatmap import PatchingHeatmap

    images, labels, patch_labels = data
    i = next(k for k in range(len(images)) if labels[k] != labels[0])
    w = PatchingHeatmap(mouse, images[0], images[i])
    own = [int(k) for k in np.flatnonzero(patch_labels[0] > 0)]
    assert w.run_corruption(own, "mask"), w.status
    assert w.corruption_patches == own and w.progress == 1.0
    clean_class = w.class_names[labels[0]]
    assert w.cell_predictions()["clean"][0]["label"] == clean_class
    assert w.cell_predictions()["corrupted"][0]["label"] != clean_class
    # layer 0, an object patch: patching it alone moves the prediction towards the clean class
    v = w.values_array()
    best = 1 + max(own, key=lambda k: v[0, 1 + k])
    assert v[0, best] > 0
    w.selected = {"layer": 0, "position": best}
    patched = {p["label"]: p["prob"] for p in w.cell_predictions()["patched"]}
    corrupted = {p["label"]: p["prob"] for p in w.cell_predictions()["corrupted"]}
    assert patched.get(clean_class, 0.0) > corrupted.get(clean_class, 0.0)
