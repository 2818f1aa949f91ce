"""Synthetic video for the video mouse: one of the project's shapes moving across the frame.

Each clip is ``frames`` frames of one shape (any of :data:`~prisma_widgets.zoo.shapes.SHAPE_CLASSES`, any
colour, size and rotation) sliding at a constant speed in one of the four :data:`MOTIONS` over a static, dark,
textured background, with fresh pixel noise in every frame. The clip's class is the **direction of motion**:
no single frame tells it, so a model has to compare frames (the point of a video model). The shape class is
returned too, as a second label. Ground truth is per frame and per patch: ``0`` background, ``1 + motion`` where
the moving object covers at least ``min_pixels`` of the patch in that frame.

Rendered with the same vectorised painter as :func:`~prisma_widgets.zoo.shapes.shapes` (every frame is an image
with one object), so 1,000 clips of 8 frames take about a second. A seed fixes the data; another seed is fresh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..validate import check_int, check_seed
from .shapes import COLOURS, SHAPE_CLASSES, Objects, backgrounds, finish, paint

#: the clip classes: the direction the shape moves in (image axes: x to the right, y downwards)
MOTIONS: tuple[str, ...] = ("right", "left", "down", "up")
#: unit step (dx, dy) in pixels per motion class
MOTION_STEPS: tuple[tuple[int, int], ...] = ((1, 0), (-1, 0), (0, 1), (0, -1))

CLIP_FRAMES = 8  # the video mouse's clip length
CLIP_SIZE = 32  # and frame side in pixels
CLIP_PATCH = 8  # its patch side: ground truth is given on this grid


@dataclass
class Clips:
    """Moving-shape clips with ground truth. Indexable like a dict (``clips["videos"]``).

    - ``videos``: uint8 ``[n, frames, size, size, 3]``
    - ``labels``: per clip its motion class, an index into :data:`MOTIONS`
    - ``shapes``: per clip its shape class, an index into ``SHAPE_CLASSES``
    - ``patch_labels``: int64 ``[n, frames, size//patch, size//patch]``: ``0`` background, ``1 + motion``
      where the object covers at least ``min_pixels`` pixels of the patch in that frame
    - ``masks``: bool ``[n, frames, size, size]``, the object's pixels in every frame (exact)
    - ``centres``: float32 ``[n, frames, 2]``, the object's centre ``(x, y)`` in pixels per frame
    """

    videos: np.ndarray
    labels: list[int]
    shapes: list[int]
    patch_labels: np.ndarray
    masks: np.ndarray
    centres: np.ndarray

    def __getitem__(self, key: str):
        return getattr(self, key)

    def __len__(self) -> int:
        return len(self.videos)

    def keys(self):
        return ("videos", "labels", "shapes", "patch_labels", "masks", "centres")


def moving_shapes(n: int, seed: int = 0, frames: int = CLIP_FRAMES, size: int = CLIP_SIZE, patch: int = CLIP_PATCH,
                  min_pixels: int = 6) -> Clips:
    """``n`` clips of one shape moving right, left, down or up (the label), with per-frame patch ground truth.

    Radius 14-22% of ``size``, speed 1.4-2.2 pixels per frame (scaled for other sizes and clip lengths so the
    shape stays in view), a random start so that the path is anywhere across the frame, constant rotation. See
    :class:`Clips` for what is returned. Deterministic for a seed; a different seed is fresh data.

    Example:
        >>> from prisma_widgets import zoo
        >>> clips = zoo.moving_shapes(2, seed=1)
        >>> clips.videos.shape, clips.patch_labels.shape, [zoo.MOTIONS[k] for k in clips.labels]
        ((2, 8, 32, 32, 3), (2, 8, 4, 4), ['up', 'left'])
    """
    n = check_int(n, "n", at_least=0, example=16)
    seed = check_seed(seed)
    frames = check_int(frames, "frames", at_least=2, at_most=64, example=8)
    size = check_int(size, "size", at_least=16, example=32,
                     fix="Pass a frame side of at least 16 pixels, e.g. size=32.")
    patch = check_int(patch, "patch", at_least=1, at_most=size, example=8)
    min_pixels = check_int(min_pixels, "min_pixels", at_least=1, example=6)
    rng = np.random.default_rng([seed, 0xC11B])
    motion = rng.integers(0, len(MOTIONS), n)
    cls = rng.integers(0, len(SHAPE_CLASSES), n)
    radius = rng.uniform(0.14, 0.22, n) * size
    # the whole path (frames - 1 steps) stays within about 70% of the frame, whatever the clip length
    speed = rng.uniform(1.4, 2.2, n) * (size / 32) * min(1.0, 7 / (frames - 1))
    step = np.asarray(MOTION_STEPS, dtype=np.float64)[motion] * speed[:, None]  # [n, 2]
    half = np.abs(step) * (frames - 1) / 2  # half the path along each axis
    margin = radius[:, None] * 0.6 + half  # the centre at mid-clip keeps the path's ends mostly in view
    mid = rng.uniform(margin, size - margin)  # [n, 2]
    t = np.arange(frames) - (frames - 1) / 2
    centres = (mid[:, None, :] + t[None, :, None] * step[:, None, :]).astype(np.float32)  # [n, T, 2]
    m = n * frames
    objs = Objects(
        cls=np.repeat(cls, frames),
        colour=np.repeat(rng.integers(0, len(COLOURS), n), frames),
        cx=centres[..., 0].reshape(m),
        cy=centres[..., 1].reshape(m),
        radius=np.repeat(radius, frames).astype(np.float32),
        angle=np.repeat(rng.uniform(0, 2 * np.pi, n), frames).astype(np.float32),
        image=np.arange(m),
        shade=np.repeat(rng.normal(0, 12, (n, 3)), frames, axis=0).astype(np.float32),
    )
    canvas = np.repeat(backgrounds(rng, n, size), frames, axis=0)  # a static background per clip
    ids = np.zeros((m, size, size), dtype=np.int8)
    paint(canvas, ids, objs)
    videos = finish(canvas, rng).reshape(n, frames, size, size, 3)  # fresh noise in every frame
    masks = (ids > 0).reshape(n, frames, size, size)
    rows, cols = size // patch, size // patch
    cover = masks[:, :, : rows * patch, : cols * patch].reshape(n, frames, rows, patch, cols, patch).sum((3, 5))
    patch_labels = np.where(cover >= min_pixels, (motion + 1)[:, None, None, None], 0).astype(np.int64)
    return Clips(videos, [int(k) for k in motion], [int(k) for k in cls], patch_labels, masks, centres)


def tubelet_labels(patch_labels: np.ndarray, tubelet: int) -> np.ndarray:
    """Per-frame patch labels ``[n, frames, rows, cols]`` -> per token frame ``[n, frames // tubelet, rows, cols]``.

    A token of a tubelet embedding sees ``tubelet`` consecutive frames; it is labelled with the largest label
    among them (with one object per clip: the object's label wherever it is in any of those frames).

    Example:
        >>> from prisma_widgets import zoo
        >>> from prisma_widgets.zoo.clips import tubelet_labels
        >>> tubelet_labels(zoo.moving_shapes(3, seed=0).patch_labels, 2).shape
        (3, 4, 4, 4)
    """
    patch_labels = np.asarray(patch_labels)
    if patch_labels.ndim != 4:
        raise ValueError(f"patch_labels must be [n, frames, rows, cols]; got shape {patch_labels.shape}")
    tubelet = check_int(tubelet, "tubelet", at_least=1, at_most=patch_labels.shape[1], example=2)
    n, frames, rows, cols = patch_labels.shape
    if frames % tubelet:
        raise ValueError(f"tubelet={tubelet} does not divide the clip's {frames} frames; pass a divisor, e.g. 1")
    return patch_labels.reshape(n, frames // tubelet, tubelet, rows, cols).max(2)
