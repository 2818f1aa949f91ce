"""Images in, models out: preprocessing with the model's own data config, and pw.load."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import prisma_widgets as pw


def test_every_image_form_gives_the_same_batch(tiny, chelsea, tmp_path):
    path = tmp_path / "cat.png"
    Image.fromarray(chelsea).save(path)
    reference = tiny.preprocess(Image.fromarray(chelsea))
    assert reference.shape == (1, 3, 64, 64)
    forms = {
        "uint8 HWC": chelsea,
        "uint8 CHW": np.moveaxis(chelsea, -1, 0),
        "float HWC": chelsea.astype(np.float32) / 255,
        "path": str(path),
        "torch uint8": torch.from_numpy(chelsea),
    }
    for label, form in forms.items():
        torch.testing.assert_close(tiny.preprocess(form), reference, atol=0, rtol=0, msg=label)
    batch = tiny.preprocess([chelsea, str(path)])
    assert batch.shape == (2, 3, 64, 64) and torch.equal(batch[0], batch[1])
    assert tiny.preprocess(np.stack([chelsea, chelsea])).shape == (2, 3, 64, 64)
    gray = tiny.preprocess(chelsea[..., 0])
    assert gray.shape == (1, 3, 64, 64)


def test_preprocess_uses_the_models_own_timm_data_config(chelsea):
    import timm
    from timm.data import create_transform, resolve_data_config

    module = timm.create_model("vit_base_patch16_clip_224", pretrained=False, depth=1).eval()
    model = pw.HookedViT(module)
    expected = create_transform(**resolve_data_config({}, model=module))(Image.fromarray(chelsea))
    assert torch.equal(model.preprocess(chelsea)[0], expected)
    mean = resolve_data_config({}, model=module)["mean"]
    assert mean != (0.485, 0.456, 0.406)  # a CLIP-normalised timm model really uses its own statistics


def test_open_clip_preprocess_matches_open_clips_transform(clip_b32, chelsea):
    import open_clip

    _, _, reference_transform = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    expected = reference_transform(Image.fromarray(chelsea))
    torch.testing.assert_close(clip_b32.preprocess(chelsea)[0], expected, atol=0, rtol=0)


def test_images_run_straight_through_the_model(tiny, chelsea):
    with torch.no_grad():
        direct = tiny(chelsea)
        via = tiny.model(tiny.preprocess(chelsea))
    assert torch.equal(direct, via)


def test_display_images_undo_normalisation(tiny, chelsea):
    shown = tiny.display_images(chelsea)
    assert shown.shape == (1, 64, 64, 3) and shown.dtype == np.uint8
    small = np.asarray(Image.fromarray(chelsea).resize((64, 64)))
    # Same picture, resized by the model's own transform: colours agree on average within a few levels.
    assert abs(shown.astype(float).mean() - small.astype(float).mean()) < 6


def test_display_images_round_trip_onto_the_same_patches(tiny, chelsea):
    """What you see is what the model sees: a displayed image fed back is not resized or cropped again."""
    shown = tiny.display_images(chelsea)
    again = tiny.display_images(shown)
    assert np.array_equal(again, shown)
    # The model's own transform would shift it (crop_pct < 1): that is what framing must avoid.
    framed = tiny.transform(Image.fromarray(shown[0]))
    assert not torch.allclose(framed, tiny.preprocess(shown)[0])
    torch.testing.assert_close(tiny.preprocess(shown), tiny.preprocess(chelsea), atol=1 / 255 / 0.2, rtol=0)


def test_bad_images_get_errors_that_name_the_fix(tiny):
    with pytest.raises(ValueError, match=r"\[0, 1\].*255"):
        tiny.preprocess(np.full((8, 8, 3), 200.0, np.float32))
    with pytest.raises(ValueError, match="shape"):
        tiny.preprocess(np.zeros((8, 8, 2), np.uint8))
    with pytest.raises(FileNotFoundError, match="no image file"):
        tiny.preprocess("/nonexistent/cat.png")
    with pytest.raises(TypeError, match="PIL images"):
        tiny.preprocess(42)
    with pytest.raises(ValueError, match="empty"):
        tiny.preprocess([])


def test_imagenet_labels_for_1000_class_heads(tiny):
    assert len(tiny.labels) == 1000 and tiny.labels[281] == "tabby"
    headless = pw.load("vit_small_patch14_reg4_dinov2", pretrained=False, img_size=56, depth=1)
    assert headless.labels is None and headless.cfg.n_classes is None
    assert "hook_pooled" in headless.hook_names()
    with pytest.raises(ValueError, match="1000 classes"):
        tiny.labels = ["a", "b"]


def test_clip_text_side(clip_b32):
    with torch.no_grad():
        text = clip_b32.encode_text(["a photo of a cat", "a photo of a dog"], normalize=True)
    assert text.shape == (2, 512)
    torch.testing.assert_close(text.norm(dim=-1), torch.ones(2))
    assert clip_b32.logit_scale == pytest.approx(1 / 0.07, rel=1e-4)
    tower_only = pw.HookedViT(clip_b32.model.visual)
    with pytest.raises(TypeError, match="wrap the CLIP model"):
        tower_only.encode_text(["a cat"])
    with pytest.raises(TypeError, match="no text tower"):
        pw.load("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1).encode_text("x")


def test_tower_alone_equals_the_whole_clip(clip_b32):
    tower_only = pw.HookedViT(clip_b32.model.visual)
    pixels = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert torch.equal(tower_only(pixels), clip_b32(pixels))


def test_load_names(tmp_path):
    m = pw.load("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", pretrained=False, img_size=32, depth=1)
    assert m.cfg.family == "timm" and m.cfg.grid == (2, 2) and not m.training
    with pytest.raises(ValueError, match="Did you mean.*vit_tiny_patch16_224"):
        pw.load("vit_tiny_patch16_2244", pretrained=False)
    with pytest.raises(ValueError, match="unknown open_clip model.*ViT-B-32"):
        pw.load("open_clip:ViT-B-322", pretrained=False)
    with pytest.raises(ValueError, match="no pretrained tag"):
        pw.load("open_clip:ViT-B-32/not-a-tag")


def test_pretrained_offline_gives_a_clear_error():
    # conftest switched the hub off (HF_HUB_OFFLINE=1): this fails fast, and says what to do.
    with pytest.raises(RuntimeError, match="pretrained=False.*mouse-vit"):
        pw.load("vit_tiny_patch16_224", pretrained=True)


def test_import_is_light():
    code = (
        "import sys, time; t = time.perf_counter(); import prisma_widgets as pw; "
        "dt = time.perf_counter() - t; "
        "heavy = [m for m in ('torch', 'timm', 'open_clip', 'anywidget', 'panel', 'bokeh') if m in sys.modules]; "
        "print(heavy); assert not heavy, heavy; assert callable(pw.load); assert 'torch' in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_fallback_stands_in_offline_with_a_notice(monkeypatch):
    monkeypatch.setenv("PRISMA_WIDGETS_OFFLINE", "1")
    assert pw.offline()
    with pytest.warns(UserWarning, match="mouse-vit"):
        model = pw.load("vit_base_patch16_224", fallback="mouse-vit")
    assert model.name == "mouse-vit" and model.labels[0] == "circle"
    assert "vit_base_patch16_224" in model.notice and "Offline" in model.notice
    assert pw.load("mouse-vit").notice is None
    # without a fallback the offline case is an error that says what to do
    with pytest.raises(pw.OfflineError, match="pretrained=False"):
        pw.load("vit_tiny_patch16_224")
    # random weights never need the hub, so the fallback is not used
    assert pw.load("vit_tiny_patch16_224", pretrained=False, fallback="mouse-vit", img_size=32, depth=1).notice is None


def test_offline_mode_loads_weights_already_in_the_hub_cache(monkeypatch, tmp_path):
    import huggingface_hub.constants
    import timm
    from safetensors.torch import save_file

    # Only PRISMA_WIDGETS_OFFLINE is on: huggingface_hub itself would go to the network.
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("PRISMA_WIDGETS_OFFLINE", "1")
    arch, small = "vit_tiny_patch16_224", {"img_size": 32, "depth": 1}
    torch.manual_seed(3)
    fetched_before = timm.create_model(arch, pretrained=False, **small)
    # the hub cache as huggingface_hub lays it out: refs/main names the snapshot that holds the file
    repo = fetched_before.pretrained_cfg["hf_hub_id"]
    cache = tmp_path / f"models--{repo.replace('/', '--')}"
    commit = "0123456789abcdef0123456789abcdef01234567"
    (cache / "snapshots" / commit).mkdir(parents=True)
    save_file(fetched_before.state_dict(), cache / "snapshots" / commit / "model.safetensors")
    (cache / "refs").mkdir()
    (cache / "refs" / "main").write_text(commit)

    model = pw.load(arch, fallback="mouse-vit", cache_dir=str(tmp_path), **small)
    assert model.notice is None and model.name == arch
    loaded = model.model.state_dict()
    for key, tensor in fetched_before.state_dict().items():
        torch.testing.assert_close(loaded[key], tensor, rtol=0, atol=0, msg=key)
    assert huggingface_hub.constants.HF_HUB_OFFLINE is False  # switched back after the load

    # not in the cache: the fallback stands in, without a network call
    (cache / "refs" / "main").unlink()
    with pytest.warns(UserWarning, match="mouse-vit"):
        assert pw.load(arch, fallback="mouse-vit", cache_dir=str(tmp_path), **small).name == "mouse-vit"


def test_open_clip_offline_without_cached_weights_falls_back_quietly(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("PRISMA_WIDGETS_OFFLINE", "1")
    with caplog.at_level("ERROR"), pytest.warns(UserWarning, match="mouse-clip"):
        model = pw.load("open_clip:ViT-B-32/openai", fallback="mouse-clip", cache_dir=str(tmp_path))
    assert model.name == "mouse-clip" and "open_clip:ViT-B-32/openai" in model.notice
    assert not [r for r in caplog.records if "Failed to download" in r.getMessage()]  # the notice says it once
    with pytest.raises(pw.OfflineError, match="pretrained=False"):
        pw.load("open_clip:ViT-B-32/openai", cache_dir=str(tmp_path))
