"""The video mouse: its architecture (a Hugging Face ``VideoMAEForVideoClassification``) and its measurements.

Pure torch, no hooks: the training script writes the card with these numbers and the tests hold the shipped
weights to them. Pixels follow the model's own processor (``VideoMAEImageProcessor`` at 32 px: rescale to
[0, 1], mean 0.5, std 0.5), laid out ``[n, frames, 3, H, W]`` as VideoMAE expects.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

from .clips import CLIP_FRAMES, CLIP_PATCH, CLIP_SIZE, MOTIONS, Clips, tubelet_labels

VIDEO_MEAN = (0.5, 0.5, 0.5)  # VideoMAEImageProcessor's defaults, so its processor at 32 px gives the same pixels
VIDEO_STD = (0.5, 0.5, 0.5)
TUBELET = 2
VIDEO_ARCH = dict(image_size=CLIP_SIZE, patch_size=CLIP_PATCH, num_channels=3, num_frames=CLIP_FRAMES,
                  tubelet_size=TUBELET, hidden_size=128, num_hidden_layers=4, num_attention_heads=4,
                  intermediate_size=512, qkv_bias=True, use_mean_pooling=True, hidden_dropout_prob=0.0,
                  attention_probs_dropout_prob=0.0)


def create_video_mouse() -> torch.nn.Module:
    """A freshly initialised VideoMAE video classifier of the video mouse's shape (32 px, 8 frames, tubelet 2)."""
    from transformers import VideoMAEConfig, VideoMAEForVideoClassification

    config = VideoMAEConfig(**VIDEO_ARCH, num_labels=len(MOTIONS), id2label=dict(enumerate(MOTIONS)),
                            label2id={m: k for k, m in enumerate(MOTIONS)})
    config.image_mean, config.image_std = list(VIDEO_MEAN), list(VIDEO_STD)  # the processor settings, kept with it
    return VideoMAEForVideoClassification(config)


def video_pixels(videos: np.ndarray) -> torch.Tensor:
    """uint8 ``[n, frames, H, W, 3]`` -> normalised float ``[n, frames, 3, H, W]`` (the video mouse's input)."""
    videos = np.asarray(videos)
    if videos.ndim != 5 or videos.shape[-1] != 3 or videos.dtype != np.uint8:
        raise ValueError(f"videos must be uint8 [n, frames, H, W, 3]; got {videos.dtype} {videos.shape}")
    x = torch.from_numpy(np.ascontiguousarray(videos)).permute(0, 1, 4, 2, 3).float().div_(255)
    mean = torch.tensor(VIDEO_MEAN).view(1, 1, 3, 1, 1)
    std = torch.tensor(VIDEO_STD).view(1, 1, 3, 1, 1)
    return (x - mean) / std


def _batches(n: int, bs: int) -> Iterator[slice]:
    for i in range(0, n, bs):
        yield slice(i, min(i + bs, n))


def token_logits(model: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The clip logits ``[n, classes]`` and the last-layer patch lens ``[n, tokens, classes]`` in one forward.

    The lens is the model's own readout applied to each token instead of their mean: ``classifier(fc_norm(t))``.
    """
    hidden = model.videomae(x).last_hidden_state  # [n, tokens, d]
    clip = model.classifier(model.fc_norm(hidden.mean(1)))
    return clip, model.classifier(model.fc_norm(hidden))


@torch.no_grad()
def measure_clips(model: torch.nn.Module, clips: Clips, batch_size: int = 100) -> dict[str, float]:
    """Accuracy of the clip class, and of the last-layer patch lens on object tokens, per token frame.

    - ``accuracy``: fraction of clips whose prediction is their motion.
    - ``patch_lens_acc``: over every token frame and patch the moving object covers (the per-frame ground truth
      reduced to token frames, :func:`~prisma_widgets.zoo.clips.tubelet_labels`), the fraction whose lens argmax
      is the object's motion; ``chance`` is ``1 / len(MOTIONS)``.
    - ``patch_lens_frame_acc``: the same per token frame (a list), to show it holds in every frame.
    """
    model.eval()
    tub = model.config.tubelet_size
    right = 0
    per_frame = np.zeros((2, clips.patch_labels.shape[1] // tub))
    for sl in _batches(len(clips), batch_size):
        clip, lens = token_logits(model, video_pixels(clips.videos[sl]))
        right += int((clip.argmax(-1).numpy() == np.asarray(clips.labels[sl])).sum())
        gt = tubelet_labels(clips.patch_labels[sl], tub)  # [n, T', rows, cols], tokens frame-major
        pred = lens.argmax(-1).numpy().reshape(gt.shape)
        obj = gt > 0
        per_frame[0] += ((pred == gt - 1) & obj).sum((0, 2, 3))
        per_frame[1] += obj.sum((0, 2, 3))
    frame_acc = per_frame[0] / np.maximum(per_frame[1], 1)
    return {"accuracy": right / max(len(clips), 1), "patch_lens_acc": float(per_frame[0].sum() / per_frame[1].sum()),
            "patch_lens_frame_acc": [float(a) for a in frame_acc], "chance": 1 / len(MOTIONS)}
