"""The bundled mice: real timm / open_clip modules, shipped weights, accuracy floors, errors, size budget."""

from __future__ import annotations

import re
import shutil

import pytest
import torch

from prisma_widgets import zoo
from prisma_widgets.zoo import evaluate, registry

from conftest import card_percent

FLOORS = {"mouse-vit": 0.97, "mouse-clip": 0.90}
FRESH_SHAPES_SEED = 424242  # never used in training (training seeds are >= 1,000,000) nor in the cards


@pytest.fixture(scope="module")
def fresh():
    return zoo.shapes(1000, seed=FRESH_SHAPES_SEED)


@pytest.fixture(scope="module")
def vit():
    return zoo.build("mouse-vit")


@pytest.fixture(scope="module")
def clip():
    return zoo.build("mouse-clip")


def test_weights_within_budget_and_safetensors_only():
    files = sorted(registry.WEIGHTS_DIR.iterdir())
    names = {f.name for f in files if f.is_file()}
    assert {f"{n}.safetensors" for n in zoo.BUNDLED} <= names
    assert all(n.endswith(".safetensors") for n in names), names  # no pickles
    total = sum(f.stat().st_size for f in files if f.is_file())
    assert total <= 8 * 1024 * 1024, f"{total / 1e6:.2f} MB"


def test_vit_is_a_real_timm_model_with_its_own_64px_config(vit):
    import timm
    from timm.models.vision_transformer import VisionTransformer

    model, meta = vit
    assert type(model) is VisionTransformer and not model.training
    assert meta["labels"] == list(zoo.SHAPE_CLASSES)
    assert meta["card"].endswith("mouse-vit.md")
    cfg = timm.data.resolve_data_config({}, model=model)
    assert cfg["input_size"] == (3, 64, 64) and cfg["crop_pct"] == 1.0
    assert tuple(cfg["mean"]) == registry.MEAN and tuple(cfg["std"]) == registry.STD
    assert model.patch_embed.grid_size == (8, 8) and model.num_prefix_tokens == 1
    assert next(model.parameters()).dtype == torch.float32


def test_vit_accuracy_on_fresh_shapes(vit, fresh):
    model, _ = vit
    images, labels = fresh
    acc = evaluate.accuracy(model, images, labels)
    assert acc >= FLOORS["mouse-vit"], acc
    # the model's own timm transform gives the same pixels as the evaluation helper
    import timm
    from PIL import Image

    t = timm.data.create_transform(**timm.data.resolve_data_config({}, model=model))
    x = torch.stack([t(Image.fromarray(im)) for im in images[:4]])
    torch.testing.assert_close(x, evaluate.to_pixels(images[:4]), atol=1e-5, rtol=0)


def test_clip_is_a_real_open_clip_model(clip):
    import open_clip

    model, meta = clip
    assert type(model) is open_clip.CLIP and not model.training
    assert model.visual.preprocess_cfg["size"] == 64
    assert tuple(model.visual.image_mean) == registry.MEAN
    tokens = meta["tokenizer"](["a photo of a star", "a small red circle at the top left and a blue star"])
    assert tokens.dtype == torch.long and tokens.shape == (2, model.context_length)
    assert model.token_embedding.weight.shape[0] == 49408  # the full table, scattered back
    # open_clip's own eval transform produces the mouse's input
    from open_clip.transform import PreprocessCfg, image_transform_v2
    from PIL import Image

    t = image_transform_v2(PreprocessCfg(**model.visual.preprocess_cfg), is_train=False)
    images, _ = zoo.shapes(3, seed=5)
    x = torch.stack([t(Image.fromarray(im)) for im in images])
    torch.testing.assert_close(x, evaluate.to_pixels(images), atol=1e-5, rtol=0)


def test_clip_zero_shot_on_fresh_shapes(clip, fresh):
    model, meta = clip
    images, labels = fresh
    acc = evaluate.accuracy(model, images, labels, meta["tokenizer"])
    assert acc >= FLOORS["mouse-clip"], acc


@pytest.mark.parametrize("name", ["mouse-vit", "mouse-clip"])
def test_card_states_recipe_and_numbers_above_floor(name):
    text = registry.card_path(name).read_text()
    for needle in ("Recipe", "seed", "training time", "logit lens", "CLS attention", f"zoo.train {name}"):
        assert needle.lower() in text.lower(), needle
    acc = float(re.search(r"accuracy on [\d,]+ fresh `shapes`.*?\*\*([\d.]+)%\*\*", text).group(1)) / 100
    assert acc >= FLOORS[name]


def test_unknown_name_lists_bundled():
    with pytest.raises(ValueError) as err:
        zoo.build("mouse-vitt")
    for name in zoo.BUNDLED:
        assert name in str(err.value)


def test_truncated_weights_error_names_the_file(tmp_path):
    src = registry.weights_path("mouse-vit")
    bad = tmp_path / "truncated-mouse-vit.safetensors"
    bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    with pytest.raises(zoo.WeightsError, match=re.escape(str(bad))):
        zoo.build("mouse-vit", weights=bad)
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00" * 100)
    with pytest.raises(zoo.WeightsError, match=re.escape(str(garbage))):
        zoo.build("mouse-vit", weights=garbage)
    with pytest.raises(zoo.WeightsError, match="does not exist"):
        zoo.build("mouse-vit", weights=tmp_path / "missing.safetensors")


def test_wrong_shape_weights_error_names_the_file_and_tensor(tmp_path):
    from safetensors.torch import load_file, save_file

    state = load_file(str(registry.weights_path("mouse-vit")))
    state["head.weight"] = torch.zeros(5, state["head.weight"].shape[1], dtype=state["head.weight"].dtype)
    bad = tmp_path / "wrong-shape.safetensors"
    save_file(state, str(bad))
    with pytest.raises(zoo.WeightsError) as err:
        zoo.build("mouse-vit", weights=bad)
    assert str(bad) in str(err.value) and "head.weight" in str(err.value)
    # a file of the other mouse
    with pytest.raises(zoo.WeightsError, match=re.escape(str(registry.weights_path("mouse-vit")))):
        zoo.build("mouse-clip", weights=registry.weights_path("mouse-vit"))


def test_weights_argument_round_trips(tmp_path, vit):
    copy = tmp_path / "copy.safetensors"
    shutil.copy(registry.weights_path("mouse-vit"), copy)
    other, meta = zoo.build("mouse-vit", weights=copy)
    assert meta["weights"] == str(copy)
    model, _ = vit
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert torch.equal(a, b), k


def test_clip_sparse_token_table(clip):
    from safetensors.torch import load_file

    model, _ = clip
    stored = load_file(str(registry.weights_path("mouse-clip")))
    index = stored[registry.SPARSE_INDEX]
    table = model.token_embedding.weight
    used = torch.zeros(table.shape[0], dtype=torch.bool)
    used[index] = True
    assert (table[~used] == 0).all() and (table[used].abs().sum(-1) > 0).all()
    tok = registry.tokenizer()
    for word in zoo.SHAPE_CLASSES + zoo.COLOUR_NAMES:
        ids = tok([word])[0]
        assert used[ids[ids > 0]].all(), word  # every caption word has a trained row


@pytest.mark.parametrize("name", ["mouse-vit", "mouse-clip"])
def test_scene_metrics_match_the_card(name, vit, clip):
    model, meta = vit if name == "mouse-vit" else clip
    scenes = zoo.scenes(300, seed=31)
    m = evaluate.scene_metrics(model, scenes, meta.get("tokenizer"))
    lens = card_percent(name, "last-layer patch logit lens")
    mass = card_percent(name, "last-layer CLS attention mass")
    # fresh scenes reproduce the card's numbers (300 scenes: a few points of sampling noise)
    assert abs(m["patch_lens_acc"] - lens) < 0.06, (m, lens)
    assert abs(m["cls_attn_object_mass"] - mass) < 0.06, (m, mass)
    # and they mean something: better than chance over 8 classes, attention concentrated on objects
    assert m["patch_lens_acc"] > 2 / len(zoo.SHAPE_CLASSES), m
    if name == "mouse-vit":
        assert m["cls_attn_object_mass"] > 1.5 * m["object_patch_fraction"], m


@pytest.mark.parametrize("name", ["mouse-vit", "mouse-clip"])
def test_loads_through_the_hooked_backend(name, vit, clip):
    """pw.load gives the same module behaviour, and its attention hook agrees with the card's computation."""
    import prisma_widgets as pw

    model, meta = vit if name == "mouse-vit" else clip
    hooked = pw.load(name)
    assert hooked.labels == list(zoo.SHAPE_CLASSES)
    assert hooked.cfg.grid == (8, 8) and hooked.cfg.image_size == (64, 64)
    images, _ = zoo.shapes(6, seed=77)
    last = len(model.blocks) if name == "mouse-vit" else len(model.visual.transformer.resblocks)
    _, cache = hooked.run_with_cache(images, names_filter=f"blocks.{last - 1}.attn.hook_pattern")
    pattern = cache[f"blocks.{last - 1}.attn.hook_pattern"]
    _, cls_attn = evaluate.patch_logits_and_cls_attention(model, evaluate.to_pixels(images), meta.get("tokenizer"))
    torch.testing.assert_close(pattern[:, :, 0], cls_attn, atol=1e-5, rtol=0)
