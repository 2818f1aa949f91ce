"""Turning clips (arrays, lists of frames, video files, batches) into video-model input ``[batch, T, 3, H, W]``.

Frames are sampled the way Hugging Face video processors sample them (``BaseVideoProcessor.sample_frames``):
``num_frames`` indices spread uniformly over the clip, ``floor(i * total / num_frames)`` (a short clip repeats
frames). Each frame then goes through the model's own per-frame transform (resize, centre crop, normalise);
frames already at the model's input size are only normalised, as for images.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..files import DamagedFileError
from ..validate import check_finite
from .preprocess import to_pil

VIDEO_ACCEPTED = (
    "a clip as a uint8 array [frames, H, W, 3] (numpy or torch), a list of frames (PIL images or [H, W, 3] "
    "arrays), a path to a video file, or a list / a 5-D array [batch, frames, H, W, 3] of these"
)
INSTALL_VIDEO = "pip install 'prisma-widgets[video]'"


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Every frame of a video file, decoded with PyAV: uint8 ``[frames, H, W, 3]``.

    Example:
        >>> read_video("clip.mp4").shape   # doctest: +SKIP
        (48, 240, 320, 3)
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no video file at {path!r}: pass the path of a video file (MP4, WebM ...) that "
                                "exists, or the frames as an array [frames, H, W, 3]")
    try:
        import av
    except ImportError as err:
        raise ImportError(f"reading video files needs PyAV: {INSTALL_VIDEO} (or pass the frames as an array "
                          "[frames, H, W, 3])") from err
    try:
        with av.open(path) as container:
            frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    except (av.error.FFmpegError, IndexError, ValueError) as err:  # no video stream, garbled or not a video
        raise DamagedFileError(f"cannot read {path!r} as a video ({err}): the file is damaged or holds no video "
                               "stream. Replace it with a readable MP4 / WebM, or pass the frames as an array.") from None
    if not frames:
        raise DamagedFileError(f"{path!r} holds a video stream with no frames; pass a clip with at least one frame")
    return np.stack(frames)


def sample_indices(total: int, num_frames: int) -> np.ndarray:
    """``num_frames`` frame indices spread uniformly over ``total`` frames (repeats when the clip is shorter).

    Example:
        >>> sample_indices(10, 4).tolist(), sample_indices(2, 4).tolist()
        ([0, 2, 5, 7], [0, 0, 1, 1])
    """
    return (np.arange(num_frames) * total / num_frames).astype(np.int64)


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, os.PathLike))


def _is_frame(x: Any) -> bool:
    from PIL import Image

    return isinstance(x, Image.Image) or (isinstance(x, (np.ndarray, torch.Tensor)) and x.ndim in (2, 3))


def _clip_error(what: str) -> ValueError:
    return ValueError(f"cannot read a clip from {what}; expected {VIDEO_ACCEPTED}")


def as_clip_list(videos: Any) -> list[Any]:
    """A single clip or a batch of clips as a list of clips (not yet decoded)."""
    if isinstance(videos, (np.ndarray, torch.Tensor)):
        if videos.ndim == 5:
            if videos.shape[0] == 0:
                raise ValueError(f"got an empty batch of clips (shape {list(videos.shape)}); pass at least one clip")
            return [videos[i] for i in range(videos.shape[0])]
        if videos.ndim == 4:
            return [videos]
        raise _clip_error(f"an array of shape {list(videos.shape)} (a single image? a video model reads clips)")
    if _is_path(videos):
        return [videos]
    if isinstance(videos, (list, tuple)):
        if not videos:
            raise ValueError(f"got an empty list; pass at least one clip: {VIDEO_ACCEPTED}")
        if all(_is_frame(v) for v in videos):
            return [list(videos)]  # one clip, frame by frame
        return list(videos)
    raise TypeError(f"cannot read a clip from a {type(videos).__name__}; expected {VIDEO_ACCEPTED}")


def clip_frames(clip: Any) -> list[Any]:
    """One clip's frames, each something :func:`~prisma_widgets.hooked.preprocess.to_pil` reads."""
    if _is_path(clip):
        clip = read_video(clip)
    if isinstance(clip, torch.Tensor):
        clip = clip.detach().cpu().numpy()
    if isinstance(clip, np.ndarray):
        if clip.ndim != 4 or clip.shape[-1] not in (1, 3):
            raise _clip_error(f"an array of shape {list(clip.shape)} (a clip is [frames, H, W, 3])")
        frames: list[Any] = [clip[i] for i in range(clip.shape[0])]
    elif isinstance(clip, (list, tuple)) and all(_is_frame(f) for f in clip):
        frames = list(clip)
    else:
        raise _clip_error(f"a {type(clip).__name__}")
    if not frames:
        raise ValueError(f"got a clip with no frames; pass at least one frame: {VIDEO_ACCEPTED}")
    return frames


def preprocess_video(
    videos: Any,
    transform: Callable[[Any], torch.Tensor],
    num_frames: int,
    input_size: tuple[int, int],
    normalization: tuple[Sequence[float], Sequence[float]],
) -> torch.Tensor:
    """Clips to a ``[batch, num_frames, 3, H, W]`` float tensor: frames sampled uniformly, each transformed."""
    mean, std = (torch.tensor(v, dtype=torch.float32).view(3, 1, 1) for v in normalization)
    clips = []
    for clip in as_clip_list(videos):
        frames = clip_frames(clip)
        tensors = []
        for i in sample_indices(len(frames), num_frames):
            pil = to_pil(frames[int(i)])
            if pil.size == (input_size[1], input_size[0]):  # already framed: only normalised
                array = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)
                tensors.append((array - mean) / std)
            else:
                tensors.append(transform(pil))
        clips.append(torch.stack(tensors))
    return torch.stack(clips)


def check_clip_pixels(pixels: torch.Tensor, num_frames: int, image_size: tuple[int, int]) -> torch.Tensor:
    """Validate an already preprocessed batch of clips; a single ``[T, 3, H, W]`` clip gets a batch axis."""
    if pixels.ndim == 4:
        pixels = pixels.unsqueeze(0)
    H, W = image_size
    if pixels.ndim != 5 or tuple(pixels.shape[1:]) != (num_frames, 3, H, W):
        raise ValueError(
            f"expected a preprocessed batch of clips of shape [batch, {num_frames}, 3, {H}, {W}] (or one clip "
            f"[{num_frames}, 3, {H}, {W}]); got {list(pixels.shape)}. Raw clips ([frames, H, W, 3] uint8 arrays, "
            "lists of frames, video files) go through model.preprocess(clips), which samples the frames.")
    if pixels.shape[0] == 0:
        raise ValueError(f"got an empty batch (shape {list(pixels.shape)}); pass at least one clip")
    check_finite(pixels, f"the preprocessed clips {list(pixels.shape)} [batch, frame, channel, row, column]",
                 "replace them (torch.nan_to_num(pixels)) or fix what produced them")
    return pixels
