"""Turning what users hold (PIL images, arrays, paths, batches) into model input."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from ..files import DamagedFileError
from ..validate import check_finite

ImageLike = Any  # PIL.Image | np.ndarray | torch.Tensor | str | os.PathLike

ACCEPTED = (
    "PIL images, uint8 arrays (0-255) or float arrays (0-1) shaped [H, W, 3], [H, W] or [3, H, W], "
    "file paths, or a list / a 4-D array of these"
)


def _array_to_pil(array: np.ndarray) -> Any:
    from PIL import Image

    if array.ndim == 3 and array.shape[0] in (1, 3, 4) and array.shape[-1] not in (1, 3, 4):
        array = np.moveaxis(array, 0, -1)  # CHW -> HWC
    if array.ndim == 3 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[-1] not in (3, 4)):
        raise ValueError(f"cannot read an image of shape {list(array.shape)}; expected {ACCEPTED}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"this image is empty (shape {list(array.shape)}); pass an image at least 1 x 1 pixels")
    if array.dtype == np.uint8:
        pixels = array
    elif np.issubdtype(array.dtype, np.floating):
        check_finite(array, f"a float image of shape {list(array.shape)}",
                     "replace them (np.nan_to_num(image)) or fix what produced them; images hold values in [0, 1]")
        lo, hi = float(array.min()), float(array.max())
        if lo < -1e-3 or hi > 1 + 1e-3:
            raise ValueError(
                f"float images must hold values in [0, 1]; this one spans [{lo:.3g}, {hi:.3g}]. "
                "Divide by 255 for 0-255 floats, or pass an already normalised batch tensor "
                "[batch, 3, H, W] straight to the model."
            )
        pixels = np.round(np.clip(array, 0, 1) * 255).astype(np.uint8)
    elif np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_:
        if array.max(initial=0) > 255 or array.min(initial=0) < 0:
            raise ValueError("integer images must hold values in 0..255")
        pixels = array.astype(np.uint8) * (255 if array.dtype == np.bool_ else 1)
    else:
        raise ValueError(f"unsupported image dtype {array.dtype}; expected {ACCEPTED}")
    return Image.fromarray(np.ascontiguousarray(pixels)).convert("RGB")


def to_pil(image: ImageLike) -> Any:
    """One image of any accepted kind as an RGB PIL image."""
    from PIL import Image

    if isinstance(image, Image.Image):
        return image.convert("RGB")
    if isinstance(image, (str, os.PathLike)):
        path = os.fspath(image)
        if not os.path.exists(path):
            raise FileNotFoundError(f"no image file at {path!r}")
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except (OSError, SyntaxError, ValueError) as err:  # PIL: unidentified, truncated or garbled files
            raise DamagedFileError(f"cannot read {path!r} as an image ({err}): the file is damaged or not an image. "
                                   "Replace it with a readable PNG / JPEG, or leave it out.") from None
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().numpy()
    if isinstance(image, np.ndarray):
        return _array_to_pil(image)
    raise TypeError(f"cannot read an image from a {type(image).__name__}; expected {ACCEPTED}")


def as_image_list(images: ImageLike | Sequence[ImageLike]) -> list[Any]:
    """Split a single image or a batch into a list of single images (not yet converted)."""
    if isinstance(images, (list, tuple)):
        if not images:
            raise ValueError(f"got an empty list of images; pass at least one: {ACCEPTED}")
        return list(images)
    if isinstance(images, (np.ndarray, torch.Tensor)) and images.ndim == 4:
        if images.shape[0] == 0:
            raise ValueError(f"got an empty batch of images (shape {list(images.shape)}); pass at least one image")
        return [images[i] for i in range(images.shape[0])]
    return [images]


def preprocess(
    images: ImageLike | Sequence[ImageLike],
    transform: Callable[[Any], torch.Tensor],
    input_size: tuple[int, int] | None = None,
    normalization: tuple[Sequence[float], Sequence[float]] | None = None,
) -> torch.Tensor:
    """A ``[batch, 3, H, W]`` float tensor through the model's own eval transform.

    An image already at ``input_size`` (H, W) is taken as framed, as ``model.display_images`` returns it:
    only normalised, not resized and cropped again, so its pixels stay aligned with the model's patches.
    """
    tensors = []
    for img in as_image_list(images):
        pil = to_pil(img)
        if input_size is not None and normalization is not None and pil.size == (input_size[1], input_size[0]):
            mean, std = (torch.tensor(v, dtype=torch.float32).view(3, 1, 1) for v in normalization)
            array = torch.from_numpy(np.asarray(pil, dtype=np.float32) / 255.0).permute(2, 0, 1)
            tensors.append((array - mean) / std)
        else:
            tensors.append(transform(pil))
    return torch.stack(tensors)


def check_pixels(pixels: torch.Tensor, image_size: tuple[int, int], dynamic: bool = False) -> torch.Tensor:
    """Validate an already preprocessed batch; a single ``[3, H, W]`` image gets a batch axis."""
    if pixels.ndim == 3:
        pixels = pixels.unsqueeze(0)
    H, W = image_size
    ok = pixels.ndim == 4 and pixels.shape[1] == 3 and (dynamic or tuple(pixels.shape[2:]) == (H, W))
    if not ok:
        raise ValueError(
            f"expected a preprocessed batch of shape [batch, 3, {H}, {W}] (or one image [3, {H}, {W}]); "
            f"got {list(pixels.shape)}. Raw images of any size go through model.preprocess(images) "
            "(or pass them to run_with_cache directly as PIL images, arrays or paths)."
        )
    if not pixels.is_floating_point():
        raise ValueError(
            f"a tensor batch must be float and normalised; got {pixels.dtype}. "
            "Pass uint8 pictures as numpy arrays or PIL images and they are preprocessed for you."
        )
    if pixels.shape[0] == 0:
        raise ValueError(f"got an empty batch (shape {list(pixels.shape)}); pass at least one image")
    check_finite(pixels, f"the preprocessed batch {list(pixels.shape)} [batch, channel, row, column]",
                 "replace them (torch.nan_to_num(pixels)) or fix what produced them")
    return pixels
