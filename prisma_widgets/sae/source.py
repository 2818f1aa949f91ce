"""Random access to images of any accepted kind, for the SAE tools that run a model over many images.

Accepted: a list or tuple of images, an array / tensor ``[n, H, W, 3]`` (or one image), a folder of image files
(searched recursively, sorted), a map-style torch ``Dataset`` or ``DataLoader`` (its dataset), or a Hugging Face
``datasets.Dataset``. Random access is what lets a stopped cache resume, so an ``IterableDataset`` is refused.

Example:
    >>> import numpy as np
    >>> from prisma_widgets.sae.source import ImageSource, as_image_source
    >>> source = ImageSource(np.zeros((5, 64, 64, 3), dtype=np.uint8))
    >>> len(source), source.kind, source.ids()
    (5, 'array', {'start': 0, 'stop': 5})
    >>> as_image_source(source) is source
    True
"""

from __future__ import annotations

import glob
import os
from typing import Any, TYPE_CHECKING

import numpy as np
import torch

from ..validate import check_finite

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm")


class ImageSource:
    """Random access to images of any accepted kind: ``len``, ``item(i)``, ``ids()``, ``pixels(model, a, b)``.

    ``kind`` is ``"folder"``, ``"array"``, ``"list"`` or ``"dataset"``; a folder also has ``root`` and the
    sorted file ``paths`` relative to it.
    """

    def __init__(self, images: Any) -> None:
        self.images = images
        self.root: str | None = None
        self.paths: list[str] | None = None
        if isinstance(images, (str, os.PathLike)):
            root = os.fspath(images)
            if not os.path.isdir(root):
                raise FileNotFoundError(f"no folder at {root!r}; pass a folder of image files, a list or an array")
            paths = sorted(
                os.path.relpath(p, root)
                for p in glob.glob(os.path.join(root, "**", "*"), recursive=True)
                if p.lower().endswith(IMAGE_SUFFIXES) and os.path.isfile(p)
            )
            if not paths:
                raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) under {root!r}")
            self.kind, self.root, self.paths, self.n = "folder", root, paths, len(paths)
            return
        if isinstance(images, torch.utils.data.DataLoader):
            images = images.dataset
            self.images = images
        if isinstance(images, torch.utils.data.IterableDataset):
            raise TypeError(
                "an IterableDataset has no random access, so a cache could not resume; pass a map-style dataset"
            )
        if isinstance(images, (np.ndarray, torch.Tensor)):
            if images.ndim == 3:
                images = images[None]
                self.images = images
            self.kind = "array"
        elif isinstance(images, (list, tuple)):
            self.kind = "list"
        elif hasattr(images, "__getitem__") and hasattr(images, "__len__"):
            self.kind = "dataset"
        else:
            raise TypeError(
                f"cannot read images from a {type(images).__name__}; pass a list of images, an array [n, H, W, 3], "
                "a folder, a torch Dataset / DataLoader, or a Hugging Face datasets.Dataset"
            )
        self.n = len(images)
        self._check_finite()
        if self.n == 0:
            raise ValueError(f"got no images (an empty {type(images).__name__}); pass at least one: a list of images, "
                             "an array [n, H, W, 3], a folder of image files or a dataset")

    def __len__(self) -> int:
        return self.n

    def _check_finite(self) -> None:
        """Float images held in memory are checked up front, before a cache writes anything (a folder or a
        dataset is checked image by image, as it is read)."""
        fix = "replace them (np.nan_to_num) or leave those images out; images hold values in [0, 1]"
        if self.kind == "array":
            check_finite(self.images, f"the images {list(self.images.shape)}", fix)
        elif self.kind == "list":
            for i, item in enumerate(self.images):
                if isinstance(item, (np.ndarray, torch.Tensor)):
                    check_finite(item, f"image {i} (shape {list(item.shape)})", fix)

    def ids(self) -> Any:
        """What identifies the images in a cache's manifest: the file paths, or the index range."""
        return list(self.paths) if self.paths is not None else {"start": 0, "stop": self.n}

    @staticmethod
    def _unwrap(item: Any) -> Any:
        if isinstance(item, dict):
            for key in ("image", "img", "pixel_values"):
                if key in item:
                    return item[key]
            raise KeyError(f"dataset items are dicts without an 'image' key (keys: {sorted(item)})")
        if isinstance(item, (tuple, list)) and len(item) >= 1:
            return item[0]  # (image, label, ...)
        return item

    def item(self, i: int) -> Any:
        """Image ``i`` as the source holds it (a file's path for a folder)."""
        if self.paths is not None:
            return os.path.join(self.root, self.paths[i])
        if self.kind in ("array", "list"):
            return self.images[i]
        return self._unwrap(self.images[i])

    def pixels(self, model: HookedViT, start: int, stop: int) -> torch.Tensor:
        """Images ``start:stop`` as the model's input tensor (float tensors taken as pixels, the rest preprocessed)."""
        if self.kind == "array" and isinstance(self.images, torch.Tensor) and self.images.is_floating_point():
            return model.to_pixels(self.images[start:stop])
        items = [self.item(i) for i in range(start, stop)]
        if all(isinstance(x, torch.Tensor) and x.is_floating_point() and x.ndim == 3 for x in items):
            return model.to_pixels(torch.stack(items))
        return model.preprocess(items)


def as_image_source(images: Any) -> ImageSource:
    """``images`` if it already is an :class:`ImageSource`, else a new one over it."""
    return images if isinstance(images, ImageSource) else ImageSource(images)
