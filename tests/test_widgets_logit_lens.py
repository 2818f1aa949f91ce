"""LogitLens widget: what it sends equals the logit-lens analysis within the stated bound, its traits
sync both ways, and editing CLIP prompts recomputes the lens in the kernel."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
import traitlets

import prisma_widgets as pw
from prisma_widgets.widgets._base import decode_array
from prisma_widgets.analysis.logit_lens import lens_statistics
from prisma_widgets.widgets.logit_lens import QUANTIZATION_BOUND, LogitLens

from conftest import build


def tiny_clip():
    import open_clip

    torch.manual_seed(0)
    clip = open_clip.CLIP(
        embed_dim=32,
        vision_cfg=dict(image_size=32, patch_size=8, width=64, layers=2, head_width=16),
        text_cfg=dict(context_length=16, vocab_size=49408, width=32, heads=2, layers=1),
    )
    return pw.HookedViT(clip)


@pytest.fixture(scope="module")
def clip():
    return tiny_clip()


def _within(got: np.ndarray, ref: np.ndarray, row_max: np.ndarray) -> bool:
    return bool((np.abs(got - ref) <= row_max * QUANTIZATION_BOUND * (1 + 1e-5) + 1e-7).all())


def _buffer_bytes(w: LogitLens) -> int:
    return sum(len(v["view"]) for v in w.get_state().values() if isinstance(v, dict) and "view" in v)


def test_arrays_equal_the_analysis_within_bound(chelsea):
    model = build("vit_tiny_patch16_224")
    w = LogitLens(model, chelsea)
    lens = pw.analysis.logit_lens(model, [chelsea], top_k=5)
    probs = lens.probs[0].double().numpy()  # [L, T, C]
    L, T, C = probs.shape
    assert w.layer_indices == list(range(model.cfg.n_layers)) and w.layer == L - 1
    assert w.grid == list(model.cfg.grid) and w.n_prefix_tokens == 1 and w.token_labels == model.token_labels()
    assert len(w.class_names) == C == 1000

    idx, p = w.top_values()
    assert w.top_indices["dtype"] == "uint16" and w.top_probs["dtype"] == "uint8"
    np.testing.assert_array_equal(idx, lens.top_k_indices[0].numpy())
    ref = lens.top_k_probs[0].double().numpy()
    assert _within(p, ref, ref[..., :1])

    # entropy, KL to the last layer and the final class's rank: computed here by hand in torch
    logp = lens.logits[0].double().log_softmax(-1)
    ent = -(logp.exp() * logp).sum(-1).numpy()
    kl = (logp[-1:].exp() * (logp[-1:] - logp)).sum(-1).numpy()
    final = logp[-1].argmax(-1)
    rank = (logp > logp.gather(-1, final.expand(L, T)[..., None])).sum(-1).numpy()
    np.testing.assert_allclose(decode_array(w.entropy), ent, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(decode_array(w.kl), np.maximum(kl, 0), rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(decode_array(w.final_rank), rank)
    assert (decode_array(w.final_rank)[-1] == 0).all() and np.allclose(decode_array(w.kl)[-1], 0, atol=1e-6)
    assert w.max_entropy == pytest.approx(np.log(1000))

    # per-class maps for the legend classes: every patch top-1 class at the last layer is there
    ids, cp = w.class_prob_values()
    top1_last = set(idx[-1, 1:, 0].tolist())
    assert top1_last <= set(ids)
    ref_cp = probs[:, :, ids].transpose(0, 2, 1)
    assert _within(cp, ref_cp, ref_cp.max(-1, keepdims=True))

    # trajectories: each token's final top-k, through every layer
    ti, tp = w.track_values()
    np.testing.assert_array_equal(ti, idx[-1])
    ref_t = np.take_along_axis(probs, np.broadcast_to(ti[None], (L,) + ti.shape), -1).transpose(1, 2, 0)
    assert _within(tp, ref_t, ref_t.reshape(T, -1).max(-1)[:, None, None])
    assert QUANTIZATION_BOUND == 1 / 510

    np.testing.assert_array_equal(decode_array(w.image_pixels), model.display_images([chelsea])[0])


def test_large_vocabulary_stays_small():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(12, 197, 1000)).astype(np.float32) * 3
    w = LogitLens.from_arrays(logits)
    full = logits.size * 4
    sent = _buffer_bytes(w)
    assert sent < 0.06 * full, (sent, full)  # ~0.5 MB of float32 probabilities would be 9.5 MB
    assert len(w.class_ids) <= 48 and w.grid == [14, 14] and w.n_prefix_tokens == 1
    # a class outside the legend, chosen from Python, gets its map (the kernel holds the probabilities)
    missing = next(c for c in range(1000) if c not in w.class_ids)
    w.target_class = missing
    ids, cp = w.class_prob_values()
    assert ids[-1] == missing
    ref = lens_statistics(logits)["probs"][:, :, missing]
    assert _within(cp[:, -1], ref, ref.max(-1, keepdims=True))


def test_traits_round_trip_and_validation():
    rng = np.random.default_rng(1)
    w = LogitLens.from_arrays(rng.normal(size=(3, 17, 6)), layers=[4, 5, 6], class_names=list("abcdef"))
    state = w.get_state()
    for key in ("layer", "patch", "target_class", "mode", "prompts"):
        assert key in state, key
    assert w.class_ids == list(range(6))  # a small vocabulary sends every class
    assert w.top_indices["dtype"] == "uint8"
    w.layer, w.patch, w.target_class, w.mode = 5, 0, 3, "class_prob"
    assert (w.layer, w.patch, w.target_class, w.mode) == (5, 0, 3, "class_prob")
    # the front end sets traits through set_state: same validation, same values
    w.set_state({"layer": 6, "patch": 16, "target_class": 2, "mode": "kl"})
    assert (w.layer, w.patch, w.target_class, w.mode) == (6, 16, 2, "kl")
    for mode in ("top1", "entropy", "rank"):
        w.mode = mode
    for name, bad in [("layer", 0), ("patch", 17), ("target_class", 6), ("mode", "logits"), ("normalization", "x")]:
        with pytest.raises(traitlets.TraitError):
            setattr(w, name, bad)
    with pytest.raises(TypeError, match="no option"):
        LogitLens.from_arrays(rng.normal(size=(1, 5, 3)), colour="red")
    with pytest.raises(ValueError, match="class names"):
        LogitLens.from_arrays(rng.normal(size=(1, 5, 3)), class_names=["a"])
    # prompts cannot be edited without a model: reverted, with a message
    w.prompts = ["a cat"]
    assert w.prompts == [] and "CLIP" in w.status


def test_from_result_and_layer_subset(chelsea):
    model = build("vit_medium_patch16_gap_256")  # no CLS: every token is a patch
    lens = pw.analysis.logit_lens(model, [chelsea])
    w = LogitLens.from_arrays(lens, chelsea, top_k=3, mode="entropy")
    assert w.n_prefix_tokens == 0 and w.grid == list(model.cfg.grid) and w.mode == "entropy"
    rows, cols = model.cfg.grid
    assert w.patch == (rows // 2) * cols + cols // 2
    assert decode_array(w.top_indices).shape == (model.cfg.n_layers, model.cfg.n_tokens, 3)
    # layers=[0] still measures KL and rank against the model's last layer
    w0 = LogitLens(model, chelsea, layers=[0])
    full = LogitLens(model, chelsea)
    assert w0.layer_indices == [0]
    np.testing.assert_allclose(decode_array(w0.kl)[0], decode_array(full.kl)[0], rtol=1e-5)
    np.testing.assert_array_equal(decode_array(w0.final_rank)[0], decode_array(full.final_rank)[0])


def test_clip_prompt_edit_recomputes(clip, chelsea):
    prompts = ["a photo of a cat", "a photo of a dog", "grass"]
    w = LogitLens(clip, chelsea, prompts=prompts)
    assert w.prompts_editable and w.prompts == prompts and w.class_names == prompts and w.class_ids == [0, 1, 2]
    before = w.class_probs
    new = ["a photo of a cat", "a photo of a dog", "grass", "the sky"]
    w.set_state({"prompts": new})  # as the front end does
    assert w.prompts == new and w.class_names == new and w.status == ""
    lens = pw.analysis.logit_lens(clip, [chelsea], prompts=new, top_k=4)
    idx, p = w.top_values()
    np.testing.assert_array_equal(idx, lens.top_k_indices[0].numpy())
    ref = lens.top_k_probs[0].double().numpy()
    assert _within(p, ref, ref[..., :1])
    ids, cp = w.class_prob_values()
    assert ids == [0, 1, 2, 3] and w.class_probs is not before
    ref_cp = lens.probs[0].double().numpy().transpose(0, 2, 1)
    assert _within(cp, ref_cp, ref_cp.max(-1, keepdims=True))
    # the chosen class survives an edit when it still exists, and is reset when it does not
    w.target_class = 3
    w.prompts = ["a cat", "a dog"]
    assert w.target_class == -1 and w.class_ids == [0, 1]
    # an empty prompt is refused: the old prompts and the old lens stay, the view says why
    w.prompts = ["a cat", "  "]
    assert w.prompts == ["a cat", "a dog"] and "text" in w.status
    with pytest.raises(ValueError, match="prompts="):
        LogitLens(clip, chelsea)


def test_saved_page_marks_prompts_read_only(clip, chelsea, tmp_path):
    w = LogitLens(clip, chelsea, prompts=["a cat", "</script><b>dog</b>"], title="lens")
    path = w.save_html(tmp_path / "lens.html")
    text = path.read_text()
    found = re.search(r'<script type="application/json" class="pw-state">(.*?)</script>', text, re.S)
    payload = json.loads(found.group(1))
    state = payload["state"]
    assert payload["widget"] == "logit_lens"
    assert state["prompts_editable"] is False and "read-only" in state["prompt_note"]
    assert state["prompts"][1] == "</script><b>dog</b>" and "</script><b>" not in text
    assert w.prompts_editable and w.prompt_note == ""  # the live widget is unchanged


def test_model_name_and_image_label_for_the_export_caption(clip, chelsea):
    """The PNG caption's model and image: model_name from the model, image_label from the user (text)."""
    lens = LogitLens(clip, chelsea, prompts=["a cat", "a dog"], image_label="chelsea <b>the cat</b>")
    assert lens.model_name == (clip.name or "")
    assert lens.image_label == "chelsea <b>the cat</b>"
    assert lens.trait_metadata("image_label", "sync") and lens.trait_metadata("model_name", "sync")
    model = build("vit_tiny_patch16_224")
    assert LogitLens(model, chelsea, layers=[0]).model_name == model.name
    with pytest.raises(traitlets.TraitError):
        LogitLens(clip, chelsea, prompts=["a cat"], image_label=["not", "text"])
