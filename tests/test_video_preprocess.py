"""Clips into video models: arrays, lists of frames, video files (PyAV, written here), uniform frame sampling
and the errors for wrong shapes. No network."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.files import DamagedFileError
from prisma_widgets.hooked.video import read_video, sample_indices

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def model() -> pw.HookedViT:
    torch.manual_seed(0)
    config = transformers.VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=32,
                                         num_hidden_layers=1, num_attention_heads=4, intermediate_size=64, num_labels=3)
    return pw.HookedViT(transformers.VideoMAEForVideoClassification(config).eval())


def clip(frames: int = 10, height: int = 32, width: int = 32) -> np.ndarray:
    """Each frame a flat grey level equal to its index x 20: which frames were sampled is visible in the pixels."""
    levels = (np.arange(frames) * 20).astype(np.uint8)
    return np.broadcast_to(levels[:, None, None, None], (frames, height, width, 3)).copy()


def sampled_levels(model: pw.HookedViT, video: object) -> list[int]:
    frames = model.display_images(video)  # [batch, T, H, W, 3]
    return [round(float(f.mean())) for f in frames[0]]


def test_sampling_is_uniform_like_hf_video_processors():
    # transformers' BaseVideoProcessor.sample_frames: torch.arange(0, total, total / num_frames).int()
    for total, num in [(10, 4), (16, 16), (3, 8), (100, 7)]:
        hf = torch.arange(0, total, total / num).int().tolist()
        assert sample_indices(total, num).tolist() == hf[:num]


def test_an_array_clip_is_sampled_to_the_model_frames(model):
    pixels = model.preprocess(clip(10))
    assert pixels.shape == (1, 4, 3, 32, 32)
    assert sampled_levels(model, clip(10)) == [0, 40, 100, 140]  # frames 0, 2, 5, 7
    torch_clip = torch.from_numpy(clip(10))
    assert torch.equal(model.preprocess(torch_clip), pixels)


def test_a_list_of_frames_and_a_batch(model):
    frames = list(clip(4))
    from PIL import Image

    pil = [Image.fromarray(f) for f in frames]
    a, b = model.preprocess(frames), model.preprocess(pil)
    assert a.shape == (1, 4, 3, 32, 32) and torch.equal(a, b)
    batch = model.preprocess([clip(4), clip(8)])
    assert batch.shape == (2, 4, 3, 32, 32)
    assert torch.equal(model.preprocess(np.stack([clip(4), clip(4)])), torch.cat([a, a]))


def test_frames_of_another_size_go_through_the_processor_transform(model):
    pixels = model.preprocess(clip(4, 48, 64))  # shortest edge to 32, then a centre crop
    assert pixels.shape == (1, 4, 3, 32, 32)
    mean, std = model.adapter.normalization()
    expected = (20 / 255 - mean[0]) / std[0]
    torch.testing.assert_close(pixels[0, 1], torch.full((3, 32, 32), expected), atol=1e-5, rtol=0)


def test_output_matches_the_module_on_the_preprocessed_clip(model):
    with torch.no_grad():
        out = model(clip(6))
        assert torch.equal(out, model.model(pixel_values=model.preprocess(clip(6))).logits)


def write_video(path: str, frames: np.ndarray) -> None:
    av = pytest.importorskip("av")
    with av.open(path, mode="w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for array in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(array, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def test_a_video_file_is_decoded_with_pyav_and_sampled(model, tmp_path):
    path = str(tmp_path / "clip.mp4")
    write_video(path, clip(12))
    decoded = read_video(path)
    assert decoded.shape == (12, 32, 32, 3) and decoded.dtype == np.uint8
    levels = [round(float(f.mean())) for f in decoded]
    assert all(abs(a - 20 * i) <= 3 for i, a in enumerate(levels))  # lossy codec: within a few levels
    got = sampled_levels(model, path)
    assert all(abs(a - b) <= 3 for a, b in zip(got, [0, 60, 120, 180]))  # frames 0, 3, 6, 9
    assert model(path).shape == (1, 3)
    assert model.preprocess([path, path]).shape == (2, 4, 3, 32, 32)


def test_wrong_shapes_say_what_is_expected(model):
    with pytest.raises(ValueError, match=r"\[frames, H, W, 3\]"):
        model.preprocess(np.zeros((32, 32, 3), np.uint8))  # one image, not a clip
    with pytest.raises(ValueError, match=r"\[frames, H, W, 3\]"):
        model.preprocess(np.zeros((4, 3, 32, 32), np.uint8))  # channels first
    with pytest.raises(ValueError, match=r"\[batch, 4, 3, 32, 32\]"):
        model(torch.zeros(1, 3, 3, 32, 32))  # a preprocessed batch with the wrong frame count
    with pytest.raises(ValueError, match="at least one"):
        model.preprocess([])
    with pytest.raises(TypeError, match="clip"):
        model.preprocess(3)


def test_bad_files_are_named(model, tmp_path):
    with pytest.raises(FileNotFoundError, match="no video file"):
        model.preprocess(str(tmp_path / "missing.mp4"))
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all" * 10)
    pytest.importorskip("av")
    with pytest.raises(DamagedFileError, match="cannot read"):
        model.preprocess(str(garbage))


def test_missing_pyav_names_the_extra(model, tmp_path, monkeypatch):
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\0")
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(ImportError, match=r"pip install 'prisma-widgets\[video\]'"):
        model.preprocess(str(path))


def test_images_are_unchanged_by_the_video_path():
    vit = pw.load("vit_tiny_patch16_224", pretrained=False, img_size=32, depth=1)
    assert not vit.cfg.is_video and vit.cfg.frames == 1 and vit.token_labels()[1] == "r0c0"
    assert vit.preprocess(np.zeros((2, 32, 32, 3), np.uint8)).shape == (2, 3, 32, 32)


def _reference_processor(kind: str, shortest: int, crop: int) -> object:
    """Hugging Face's own per-frame processor for the family, at this test's sizes."""
    if kind == "videomae":
        from transformers.models.videomae.image_processing_pil_videomae import VideoMAEImageProcessorPil as Processor
    else:
        from transformers.models.vivit.image_processing_vivit import VivitImageProcessor as Processor
    return Processor(size={"shortest_edge": shortest}, crop_size={"height": crop, "width": crop})


@pytest.mark.parametrize("kind", ["videomae", "vivit"])
def test_frames_match_the_hf_processor(kind, model):
    if kind == "vivit":  # ViViT resizes to 256 / 224 of the crop and rescales to [-1, 1] before normalising
        config = transformers.VivitConfig(image_size=32, tubelet_size=[2, 16, 16], num_frames=4, hidden_size=16,
                                          num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
        model = pw.HookedViT(transformers.VivitForVideoClassification(config).eval())
    shortest = round(32 * (256 / 224 if kind == "vivit" else 1))
    frames = np.random.default_rng(0).integers(0, 256, (4, 48, 64, 3), dtype=np.uint8)
    reference = _reference_processor(kind, shortest, 32)([list(frames)], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(model.preprocess(frames), reference, atol=1e-5, rtol=1e-5)


def test_a_saved_processor_config_is_followed(tmp_path):
    config = transformers.VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=16,
                                         num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    transformers.VideoMAEForVideoClassification(config).save_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(
        '{"size": {"shortest_edge": 40}, "crop_size": {"height": 32, "width": 32}, '
        '"image_mean": [0.485, 0.456, 0.406], "image_std": [0.229, 0.224, 0.225]}')
    model = pw.load(f"hf:{tmp_path}")
    assert model.adapter.normalization() == ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    frames = np.random.default_rng(1).integers(0, 256, (4, 50, 70, 3), dtype=np.uint8)
    processor = _reference_processor("videomae", 40, 32)
    processor.image_mean, processor.image_std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    reference = processor([list(frames)], return_tensors="pt")["pixel_values"]
    torch.testing.assert_close(model.preprocess(frames), reference, atol=1e-5, rtol=1e-5)


def test_processor_settings_kept_on_the_config_are_followed():
    config = transformers.VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=16,
                                         num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    config.image_mean, config.image_std = [0.4, 0.4, 0.4], [0.2, 0.2, 0.2]
    model = pw.HookedViT(transformers.VideoMAEModel(config).eval())
    assert model.adapter.normalization() == ((0.4, 0.4, 0.4), (0.2, 0.2, 0.2))
    pixels = model.preprocess(clip(4))
    torch.testing.assert_close(pixels[0, 1], torch.full((3, 32, 32), (20 / 255 - 0.4) / 0.2), atol=1e-5, rtol=0)
