"""The video mouse: a real Hugging Face VideoMAE module with shipped weights, held to its card on fresh clips;
through pw.load it is exact against the unwrapped module and its last-layer lens labels the moving object."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import prisma_widgets as pw
from prisma_widgets import zoo
from prisma_widgets.zoo import registry
from prisma_widgets.zoo.clips import tubelet_labels
from prisma_widgets.zoo.train_video import FLOOR
from prisma_widgets.zoo.video import measure_clips, token_logits, video_pixels

FRESH_CLIPS_SEED = 424243  # never used in training (seeds >= 1,000,000) nor in the card (seed 9)
N_FRESH = 600


@pytest.fixture(scope="module")
def mouse():
    return zoo.build("mouse-video")


@pytest.fixture(scope="module")
def fresh():
    return zoo.moving_shapes(N_FRESH, seed=FRESH_CLIPS_SEED)


@pytest.fixture(scope="module")
def measured(mouse, fresh):
    return measure_clips(mouse[0], fresh)


def _card_number(text: str, pattern: str) -> float:
    return float(re.search(pattern, text, flags=re.S).group(1)) / 100


def test_a_real_videomae_within_budget(mouse):
    from transformers import VideoMAEForVideoClassification

    model, meta = mouse
    assert type(model) is VideoMAEForVideoClassification and not model.training
    assert meta["labels"] == list(zoo.MOTIONS) and meta["card"].endswith("mouse-video.md")
    cfg = model.config
    assert (cfg.num_frames, cfg.tubelet_size, cfg.image_size, cfg.patch_size) == (8, 2, 32, 8)
    assert registry.weights_path("mouse-video").stat().st_size <= 3 * 1024 * 1024


def test_accuracy_on_fresh_clips_meets_the_card(measured):
    card = registry.card_path("mouse-video").read_text()
    stated = _card_number(card, r"accuracy on [\d,]+ fresh clips.*?\*\*([\d.]+)%\*\*")
    print(f"mouse-video: accuracy {measured['accuracy']:.2%} on {N_FRESH} fresh clips (card: {stated:.2%})")
    assert stated >= FLOOR
    assert measured["accuracy"] >= FLOOR, measured
    assert measured["accuracy"] >= stated - 0.03  # 600 clips: within sampling noise of the card's 2,000


def test_last_layer_lens_labels_the_moving_object_per_frame(measured):
    card = registry.card_path("mouse-video").read_text()
    stated = _card_number(card, r"patch lens on the moving object's tokens.*?\*\*([\d.]+)%\*\*")
    chance = measured["chance"]
    print(f"mouse-video: patch lens {measured['patch_lens_acc']:.2%} on object tokens (chance {chance:.0%}, "
          f"card {stated:.2%}); per token frame {[round(a, 3) for a in measured['patch_lens_frame_acc']]}")
    assert measured["patch_lens_acc"] > 3 * chance
    assert min(measured["patch_lens_frame_acc"]) > 3 * chance  # in every token frame, not on average
    assert measured["patch_lens_acc"] >= stated - 0.03


def test_pw_load_is_exact_and_its_lens_is_the_cards_lens(mouse, fresh):
    from prisma_widgets.analysis.logit_lens import logit_lens

    model, _ = mouse
    hooked = pw.load("mouse-video")
    cfg = hooked.cfg
    assert (cfg.frames, cfg.tubelet_size, tuple(cfg.grid), cfg.n_prefix_tokens) == (4, 2, (4, 4), 0)
    assert hooked.labels == list(zoo.MOTIONS)
    videos = fresh.videos[:16]
    # the backend preprocesses a clip exactly as the mouse was trained (VideoMAEImageProcessor at 32 px)
    x = hooked.to_pixels(list(videos))
    torch.testing.assert_close(x, video_pixels(videos), atol=0, rtol=0)
    with torch.no_grad():
        torch.testing.assert_close(hooked(x), model(video_pixels(videos)).logits, atol=0, rtol=0)
    # the backend's last-layer lens is the card's: classifier(fc_norm(token)), scored on object tokens
    lens = logit_lens(hooked, list(videos), layers=[cfg.n_layers - 1])
    with torch.no_grad():
        _, reference = token_logits(model, video_pixels(videos))
    torch.testing.assert_close(lens.logits[:, 0], reference, atol=1e-5, rtol=1e-5)
    pred = lens.patch_logits()[:, 0].argmax(-1).numpy()  # [n, frames, rows, cols]
    gt = tubelet_labels(fresh.patch_labels[:16], 2)
    obj = gt > 0
    assert (pred[obj] == gt[obj] - 1).mean() > 3 * 0.25


def test_the_processor_gives_the_mouses_pixels(fresh):
    from transformers import VideoMAEImageProcessor

    proc = VideoMAEImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    out = proc(list(fresh.videos[0]), return_tensors="pt")["pixel_values"]
    np.testing.assert_allclose(out.numpy(), video_pixels(fresh.videos[:1]).numpy(), atol=1e-6)
