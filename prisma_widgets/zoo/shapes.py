"""Synthetic shapes data for the bundled mice: single shapes (classification) and multi-object scenes.

Everything is rendered with vectorised numpy on a pixel grid (no PIL drawing loop), so 1,000 images take
well under a second. A seed fixes the data completely; a different seed gives fresh data.

Shapes are implicit masks in a local frame ``(u, v)`` (the pixel grid translated to the object's centre,
rotated by its angle and divided by its radius), so each class is one vectorised test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..validate import check_int, check_seed

SHAPE_CLASSES: tuple[str, ...] = ("circle", "square", "triangle", "star", "heart", "cross", "ring", "diamond")

#: colour name -> RGB. All bright enough to stand out from the dark textured backgrounds.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (225, 45, 40),
    "green": (50, 190, 70),
    "blue": (60, 110, 240),
    "yellow": (240, 220, 50),
    "orange": (250, 145, 30),
    "purple": (170, 80, 225),
    "white": (240, 240, 240),
    "cyan": (50, 215, 225),
}
COLOUR_NAMES: tuple[str, ...] = tuple(COLOURS)

#: size words of ``scenes`` captions -> object radius range in pixels (64 px images).
SIZES: dict[str, tuple[float, float]] = {"small": (6.5, 8.5), "large": (10.0, 12.5)}

#: the 3x3 layout of ``scenes``: cell (row, col) -> position words used in captions.
POSITIONS: dict[tuple[int, int], str] = {
    (0, 0): "top left", (0, 1): "top", (0, 2): "top right",
    (1, 0): "left", (1, 1): "center", (1, 2): "right",
    (2, 0): "bottom left", (2, 1): "bottom", (2, 2): "bottom right",
}

PATCH_SIZE = 8  # the mice's patch size: ground truth is given on this grid


# ----------------------------------------------------------------------------------------------------------
# implicit shape masks in the unit frame (the shape fits in the unit disc)


def _polygon(u, v, verts):
    """Inside test for a convex polygon given counter-clockwise (in u, v) vertices."""
    inside = np.ones(u.shape, dtype=bool)
    for (x0, y0), (x1, y1) in zip(verts, verts[1:] + verts[:1]):
        inside &= (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0) >= 0
    return inside


def _ngon(n, r=1.0, phase=0.0):
    a = phase + 2 * np.pi * np.arange(n) / n
    return [(float(r * np.cos(t)), float(r * np.sin(t))) for t in a]


def _star(u, v, points=5, outer=1.0, inner=0.42):
    theta = np.arctan2(v, u) + np.pi / 2  # a point straight up
    rho = np.hypot(u, v)
    sector = 2 * np.pi / points
    phi = np.abs(np.mod(theta, sector) - sector / 2)  # 0 at an inner vertex ... sector/2 at a tip
    phi = sector / 2 - phi  # 0 at the tip
    # the edge from the tip (outer, 0) to the inner vertex (inner*cos, inner*sin) at angle sector/2
    px, py = rho * np.cos(phi), rho * np.sin(phi)
    ix, iy = inner * np.cos(sector / 2), inner * np.sin(sector / 2)
    return (ix - outer) * py - iy * (px - outer) >= 0  # the origin side of the tip-to-inner edge


def _heart(u, v):
    x, y = u * 1.25, -v * 1.25 + 0.25  # y up, centred
    return (x * x + y * y - 1) ** 3 - x * x * y ** 3 <= 0


def _mask(cls: int, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    name = SHAPE_CLASSES[cls]
    if name == "circle":
        return u * u + v * v <= 0.85 ** 2
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.68
    if name == "triangle":
        return _polygon(u, v, _ngon(3, 1.0, -np.pi / 2))  # v grows downwards: flip to keep CCW
    if name == "star":
        return _star(u, v)
    if name == "heart":
        return _heart(u, v)
    if name == "cross":
        a, b = np.abs(u), np.abs(v)
        return ((a <= 0.27) & (b <= 0.9)) | ((b <= 0.27) & (a <= 0.9))
    if name == "ring":
        r2 = u * u + v * v
        return (r2 <= 0.92 ** 2) & (r2 >= 0.5 ** 2)
    if name == "diamond":  # an elongated rhombus, so no rotation of a square is a diamond
        return np.abs(u) / 0.55 + np.abs(v) / 0.98 <= 1
    raise ValueError(name)


# ----------------------------------------------------------------------------------------------------------
# rendering


def backgrounds(rng: np.random.Generator, n: int, size: int) -> np.ndarray:
    """Dark textured backgrounds: a base colour, a smooth gradient and a sinusoidal texture (stripes).

    Pixel noise is added over the whole image (objects included) by :func:`finish`.
    """
    x = (np.arange(size, dtype=np.float32) + 0.5) / size
    base = rng.uniform(10, 85, (n, 1, 1, 3)).astype(np.float32)
    gdir = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    gamp = rng.uniform(0, 35, n).astype(np.float32)
    grad = (np.cos(gdir)[:, None] * x)[:, None, :] + (np.sin(gdir)[:, None] * x)[:, :, None]  # [n, H, W]
    freq = rng.uniform(2, 9, n).astype(np.float32)
    tdir = rng.uniform(0, np.pi, n).astype(np.float32)
    tamp = rng.uniform(0, 18, n).astype(np.float32) * (rng.random(n) < 0.7)
    # sin(a + b) = sin a cos b + cos a sin b keeps everything separable: [n, H, 1] x [n, 1, W]
    a = 2 * np.pi * (freq * np.cos(tdir))[:, None] * x  # along W
    b = 2 * np.pi * (freq * np.sin(tdir))[:, None] * x  # along H
    tex = np.sin(a)[:, None, :] * np.cos(b)[:, :, None] + np.cos(a)[:, None, :] * np.sin(b)[:, :, None]
    shade = grad * gamp[:, None, None] + tex * tamp[:, None, None]
    return base + shade[..., None]


@dataclass
class Objects:
    cls: np.ndarray  # [m] int
    colour: np.ndarray  # [m] int
    cx: np.ndarray  # [m] float pixels
    cy: np.ndarray
    radius: np.ndarray
    angle: np.ndarray
    image: np.ndarray  # [m] which image the object belongs to
    shade: np.ndarray  # [m, 3] colour jitter


def paint(canvas: np.ndarray, ids: np.ndarray, objs: Objects) -> np.ndarray:
    """Paint objects into ``canvas`` [n,H,W,3] float (later objects of an image on top) and ``ids`` [n,H,W].

    ``ids`` receives ``1 + the object's index within its image`` (0 = background). Vectorised layer by layer:
    all first objects of every image at once, then all second objects, ...  Objects must be sorted by image.
    Returns the per-image class table ``[n, max_objects]`` (-1 where an image has fewer objects).
    """
    n, size = canvas.shape[0], canvas.shape[1]
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    m = len(objs.cls)
    first = np.r_[0, np.flatnonzero(np.diff(objs.image)) + 1] if m else np.zeros(0, int)
    layer = np.arange(m) - np.repeat(first, np.diff(np.r_[first, m]))
    n_layers = int(layer.max()) + 1 if m else 0
    table = np.full((n, max(n_layers, 1)), -1, dtype=np.int64)
    table[objs.image, layer] = objs.cls
    palette = np.array(list(COLOURS.values()), dtype=np.float32)
    for k in range(n_layers):
        sel = np.flatnonzero(layer == k)
        cos, sin = np.cos(objs.angle[sel])[:, None, None], np.sin(objs.angle[sel])[:, None, None]
        r = objs.radius[sel][:, None, None]
        dx = (xx[None] - objs.cx[sel][:, None, None]) / r
        dy = (yy[None] - objs.cy[sel][:, None, None]) / r
        u, v = cos * dx + sin * dy, -sin * dx + cos * dy
        inside = np.zeros(u.shape, dtype=bool)
        for c in np.unique(objs.cls[sel]):
            w = objs.cls[sel] == c
            inside[w] = _mask(int(c), u[w], v[w])
        colour = (palette[objs.colour[sel]] + objs.shade[sel])[:, None, None, :]
        img = objs.image[sel]  # distinct images within one layer
        canvas[img] = np.where(inside[..., None], colour, canvas[img])
        ids[img] = np.where(inside, k + 1, ids[img])
    return table


def finish(canvas: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-image Gaussian pixel noise (sigma 4-14) over everything, then clip to uint8."""
    n = canvas.shape[0]
    sigma = rng.uniform(4, 14, (n, 1, 1, 1)).astype(np.float32)
    canvas += rng.standard_normal(canvas.shape, dtype=np.float32) * sigma
    np.clip(canvas, 0, 255, out=canvas)
    return (canvas + 0.5).astype(np.uint8)


def _patch_majority(ids: np.ndarray, table: np.ndarray, patch: int, min_pixels: int) -> np.ndarray:
    """Per patch: 1 + the class with most pixels there (objects of one class summed), if >= min_pixels; else 0."""
    n, h, w = ids.shape
    patch = check_int(patch, "patch", at_least=1, at_most=min(h, w), example=8)
    min_pixels = check_int(min_pixels, "min_pixels", at_least=0, example=8)
    rows, cols = h // patch, w // patch
    blocks = ids[:, : rows * patch, : cols * patch].reshape(n, rows, patch, cols, patch)
    counts = np.zeros((n, rows, cols, len(SHAPE_CLASSES) + 1), dtype=np.int64)
    img = np.arange(n)[:, None, None]
    for k in range(table.shape[1]):
        cnt = (blocks == k + 1).sum((2, 4))
        cls = table[:, k][:, None, None] + 1  # 0 where the image has no k-th object
        # one class per image and layer: no repeated index, so a plain fancy-indexed += is exact
        counts[img, np.arange(rows)[None, :, None], np.arange(cols)[None, None, :], cls] += cnt
    counts[..., 0] = 0
    best = counts.argmax(-1)
    return np.where(np.take_along_axis(counts, best[..., None], -1)[..., 0] >= max(int(min_pixels), 1), best, 0)


def _checked(n: int, seed: int, size: int) -> tuple[int, int, int]:
    """The image count, seed and side, checked: a whole number of images, a side the shapes fit in."""
    return (check_int(n, "n", at_least=0, example=16), check_seed(seed),
            check_int(size, "size", at_least=8, example=64, fix="Pass a side of at least 8 pixels, e.g. size=64."))


def _single(n: int, seed: int, size: int):
    n, seed, size = _checked(n, seed, size)
    rng = np.random.default_rng([seed, 0x5A4E])
    labels = rng.integers(0, len(SHAPE_CLASSES), n)
    radius = rng.uniform(0.14, 0.36, n) * size
    margin = radius * 0.9
    cx = rng.uniform(margin, size - margin)
    cy = rng.uniform(margin, size - margin)
    objs = Objects(
        cls=labels,
        colour=rng.integers(0, len(COLOURS), n),
        cx=cx.astype(np.float32),
        cy=cy.astype(np.float32),
        radius=radius.astype(np.float32),
        angle=rng.uniform(0, 2 * np.pi, n).astype(np.float32),
        image=np.arange(n),
        shade=rng.normal(0, 12, (n, 3)).astype(np.float32),
    )
    canvas = backgrounds(rng, n, size)
    ids = np.zeros((n, size, size), dtype=np.int8)
    table = paint(canvas, ids, objs)
    return finish(canvas, rng), labels, ids, table, objs


def shapes(n: int, seed: int = 0, size: int = 64) -> tuple[np.ndarray, list[int]]:
    """``n`` images of one shape each, and their class indices into :data:`SHAPE_CLASSES`.

    Random class, colour (:data:`COLOURS` with jitter), radius (14-36% of ``size``), position, rotation and a
    dark textured, noisy background. Deterministic for a seed; a different seed is fresh data.

    Example:
        >>> from prisma_widgets import zoo
        >>> images, labels = zoo.shapes(4, seed=1)
        >>> images.shape, images.dtype, len(labels)
        ((4, 64, 64, 3), dtype('uint8'), 4)
    """
    images, labels, _, _, _ = _single(n, seed, size)
    return images, [int(c) for c in labels]


def shapes_with_patches(n: int, seed: int = 0, size: int = 64, patch: int = PATCH_SIZE, min_pixels: int = 8):
    """:func:`shapes` plus per-patch ground truth ``[n, size//patch, size//patch]`` (0 background, k+1 class k)."""
    images, labels, ids, table, _ = _single(n, seed, size)
    return images, [int(c) for c in labels], _patch_majority(ids, table, patch, min_pixels)


class ShapePair(NamedTuple):
    """A minimal pair for activation patching: one scene twice, with only its shape's class changed."""

    clean: np.ndarray  # uint8 [size, size, 3]
    corrupted: np.ndarray  # the same background, noise, colour, size, place and rotation; another shape
    classes: tuple[int, int]  # (clean, corrupted) indices into SHAPE_CLASSES
    patches: list[int]  # flat (row-major) indices of the 8 px patches where the two images differ


def shape_pair(seed: int = 0, size: int = 64) -> ShapePair:
    """A clean / corrupted pair that differs in one thing: the shape (same everything else, pixel for pixel).

    The shape is large (24-36% of ``size``) so the mice see it clearly; its class and the other class are
    drawn from the seed (always different). ``patches`` are where the images differ: the changed object.

    Example:
        >>> from prisma_widgets import zoo
        >>> clean, corrupted, (a, b), patches = zoo.shape_pair(seed=0)
        >>> clean.shape, a != b, 0 < len(patches) < 64
        ((64, 64, 3), True, True)
        >>> [zoo.SHAPE_CLASSES[a], zoo.SHAPE_CLASSES[b]]
        ['square', 'ring']
    """
    _, seed, size = _checked(1, seed, size)
    rng = np.random.default_rng([seed, 0x9A1E])
    k = len(SHAPE_CLASSES)
    first = int(rng.integers(k))
    second = (first + 1 + int(rng.integers(k - 1))) % k
    radius = float(rng.uniform(0.24, 0.36) * size)
    cx, cy = rng.uniform(radius * 0.9, size - radius * 0.9, 2)
    two = np.ones(2, dtype=np.float32)
    objs = Objects(cls=np.array([first, second]), colour=np.repeat(rng.integers(0, len(COLOURS)), 2),
                   cx=two * cx, cy=two * cy, radius=two * radius, angle=two * rng.uniform(0, 2 * np.pi),
                   image=np.arange(2), shade=np.repeat(rng.normal(0, 12, (1, 3)).astype(np.float32), 2, 0))
    canvas = np.repeat(backgrounds(rng, 1, size), 2, axis=0)
    ids = np.zeros((2, size, size), dtype=np.int8)
    paint(canvas, ids, objs)
    canvas += rng.standard_normal((1, size, size, 3), dtype=np.float32) * rng.uniform(4, 14)  # the same noise
    np.clip(canvas, 0, 255, out=canvas)
    images = (canvas + 0.5).astype(np.uint8)
    patch = PATCH_SIZE * size // 64
    rows = size // patch
    differ = (images[0] != images[1]).any(-1)[: rows * patch, : rows * patch]
    grid = differ.reshape(rows, patch, rows, patch).any((1, 3))
    return ShapePair(images[0], images[1], (first, second), [int(i) for i in np.flatnonzero(grid)])


SINGLE_TEMPLATES = ("a {}", "a photo of a {}", "an image of a {}", "a picture of a {}", "a drawing of a {}")


def shapes_with_captions(n: int, seed: int = 0, size: int = 64, patch: int = PATCH_SIZE, min_pixels: int = 8):
    """:func:`shapes` plus patch ground truth and a caption per image (for training the CLIP mouse).

    The caption names the class and, at random, the colour, a size word (radius under 21% of the image:
    ``small``, over 29%: ``large``) and the 3x3 cell of the centre, inside one of :data:`SINGLE_TEMPLATES`.
    """
    images, labels, ids, table, objs = _single(n, seed, size)
    rng = np.random.default_rng([int(seed), 0xCA9])
    captions = []
    for i in range(len(images)):
        rel = objs.radius[i] / size
        size_word = "small" if rel < 0.21 else "large" if rel > 0.29 else None
        cell = (min(int(objs.cy[i] / size * 3), 2), min(int(objs.cx[i] / size * 3), 2))
        words = []
        if size_word and rng.random() < 0.6:
            words.append(size_word)
        if rng.random() < 0.7:
            words.append(COLOUR_NAMES[objs.colour[i]])
        words.append(SHAPE_CLASSES[labels[i]])
        text = " ".join(words)
        if rng.random() < 0.4:
            text += f" at the {POSITIONS[cell]}"
        template = SINGLE_TEMPLATES[rng.integers(len(SINGLE_TEMPLATES))]
        if template.startswith("a {}") and text[0] in "aeiou":
            template = "an {}"
        captions.append(template.format(text))
    return images, [int(c) for c in labels], _patch_majority(ids, table, patch, min_pixels), captions


@dataclass
class Scenes:
    """Multi-object scenes with ground truth. Indexable like a dict (``scenes["images"]``).

    - ``images``: uint8 ``[n, 64, 64, 3]``
    - ``patch_labels``: int64 ``[n, 8, 8]`` on the mice's 8 px patch grid: ``0`` background, ``k + 1`` for
      shape class ``k``: the class with the most pixels in the patch, if it covers at least ``min_pixels``
      of the patch's 64 pixels (default 8); later objects are painted over earlier ones.
    - ``pixel_labels``: int64 ``[n, 64, 64]``, the same convention per pixel (exact, no threshold).
    - ``captions``: one string per image, e.g. ``"a small red circle at the top left and a blue star"``.
    - ``objects``: per image a list of ``(class, colour, size, position)`` name tuples, in painting order.
    - ``labels``: per image the list of class indices present.
    """

    images: np.ndarray
    patch_labels: np.ndarray
    pixel_labels: np.ndarray
    captions: list[str]
    objects: list[list[tuple[str, str, str, str]]]
    labels: list[list[int]]

    def __getitem__(self, key: str):
        return getattr(self, key)

    def __len__(self) -> int:
        return len(self.images)

    def keys(self):
        return ("images", "patch_labels", "pixel_labels", "captions", "objects", "labels")


def _describe(rng: np.random.Generator, obj: tuple[str, str, str, str], full: bool = False) -> str:
    cls, colour, size, pos = obj
    words = []
    if full or rng.random() < 0.6:
        words.append(size)
    if full or rng.random() < 0.8:
        words.append(colour)
    words.append(cls)
    text = " ".join(words)
    if full or rng.random() < 0.6:
        text += f" at the {pos}"
    return text


def _join(parts: list[str]) -> str:
    parts = [("an " if p[0] in "aeiou" else "a ") + p for p in parts]
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def scenes(n: int, seed: int = 0, size: int = 64, min_objects: int = 2, max_objects: int = 4,
           min_pixels: int = 8) -> Scenes:
    """``n`` scenes of ``min_objects``-``max_objects`` shapes in distinct cells of a 3x3 layout.

    Each object has a class, a colour, a size word (``small``/``large``, see :data:`SIZES`) and a position
    word (its layout cell, :data:`POSITIONS`), plus jitter and a random rotation. Captions mention every
    object by class, and each attribute with some probability, in random order. See :class:`Scenes`.

    Example:
        >>> from prisma_widgets import zoo
        >>> s = zoo.scenes(2, seed=3)
        >>> s.images.shape, s.patch_labels.shape, len(s.captions)
        ((2, 64, 64, 3), (2, 8, 8), 2)
    """
    n, seed, size = _checked(n, seed, size)
    min_objects = check_int(min_objects, "min_objects", at_least=1, at_most=9, example=2)
    max_objects = check_int(max_objects, "max_objects", at_least=min_objects, at_most=9, example=4,
                            fix=f"Pass max_objects between min_objects={min_objects} and 9 (a 3x3 layout).")
    rng = np.random.default_rng([seed, 0x5CE9E])
    counts = rng.integers(min_objects, max_objects + 1, n)
    m = int(counts.sum())
    image = np.repeat(np.arange(n), counts)
    cells = np.concatenate([rng.permutation(9)[:c] for c in counts]) if n else np.zeros(0, int)
    size_idx = rng.integers(0, len(SIZES), m)
    lo = np.array([r[0] for r in SIZES.values()])[size_idx]
    hi = np.array([r[1] for r in SIZES.values()])[size_idx]
    scale = size / 64
    radius = rng.uniform(lo, hi) * scale
    cell = size / 3
    jitter = np.maximum(cell / 2 - radius * 0.8, 0)
    cx = (cells % 3 + 0.5) * cell + rng.uniform(-1, 1, m) * jitter
    cy = (cells // 3 + 0.5) * cell + rng.uniform(-1, 1, m) * jitter
    objs = Objects(
        cls=rng.integers(0, len(SHAPE_CLASSES), m),
        colour=rng.integers(0, len(COLOURS), m),
        cx=cx.astype(np.float32),
        cy=cy.astype(np.float32),
        radius=radius.astype(np.float32),
        angle=rng.uniform(0, 2 * np.pi, m).astype(np.float32),
        image=image,
        shade=rng.normal(0, 12, (m, 3)).astype(np.float32),
    )
    canvas = backgrounds(rng, n, size)
    ids = np.zeros((n, size, size), dtype=np.int8)
    table = paint(canvas, ids, objs)
    images = finish(canvas, rng)
    obj_cls = objs.cls
    pixel_labels = np.take_along_axis(table, np.maximum(ids - 1, 0).reshape(n, -1), 1).reshape(ids.shape) + 1
    pixel_labels = np.where(ids > 0, pixel_labels, 0)
    patch_labels = _patch_majority(ids, table, PATCH_SIZE * size // 64, min_pixels)
    size_names = list(SIZES)
    objects: list[list[tuple[str, str, str, str]]] = [[] for _ in range(n)]
    labels: list[list[int]] = [[] for _ in range(n)]
    for j in range(m):
        i = int(image[j])
        objects[i].append((SHAPE_CLASSES[obj_cls[j]], COLOUR_NAMES[objs.colour[j]], size_names[size_idx[j]],
                           POSITIONS[(int(cells[j]) // 3, int(cells[j]) % 3)]))
        labels[i].append(int(obj_cls[j]))
    captions = []
    for i in range(n):
        order = rng.permutation(len(objects[i]))
        captions.append(_join([_describe(rng, objects[i][k]) for k in order]))
    return Scenes(images, patch_labels, pixel_labels, captions, objects, labels)
