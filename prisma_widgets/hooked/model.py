"""``HookedViT``: TransformerLens-style hooks over a real timm, open_clip or Hugging Face ViT."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Union

import numpy as np
import torch
from torch import nn

from ..validate import check_int, check_strings
from .adapters import Adapter, adapt
from .adapters.text_tower import check_tokens
from .allocator import host_memory_is_kept
from .arena import CacheArena
from .cache import ActivationCache
from .config import HookedViTConfig
from .hook_points import ActiveHooks, HookFn, HookPoint, NameFilter, resolve_filter
from .preprocess import ImageLike, check_pixels, preprocess
from .video import check_clip_pixels, preprocess_video

FwdHooks = Iterable[tuple[Union[str, Callable[[str], bool], Sequence[Any]], HookFn]]


class HookedViT(nn.Module):
    """A timm, open_clip or Hugging Face vision transformer with TransformerLens hook points.

    The wrapped module runs as built: no weight conversion, and with no hook editing anything and no
    attention pattern asked for, outputs are bit-identical to calling the module itself.

    Example:
        >>> import numpy as np
        >>> import prisma_widgets as pw
        >>> model = pw.load("vit_tiny_patch16_224", pretrained=False, img_size=64, depth=2)
        >>> image = np.zeros((64, 64, 3), np.uint8)
        >>> logits, cache = model.run_with_cache(image, names_filter="blocks.1.attn.hook_pattern")
        >>> cache["pattern", 1].shape
        torch.Size([1, 3, 17, 17])
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        name: str | None = None,
        labels: Sequence[str] | None = None,
        tokenizer: Callable[[list[str]], torch.Tensor] | None = None,
        transform: Callable[[Any], torch.Tensor] | None = None,
    ) -> None:
        super().__init__()
        self.model = model
        self.adapter: Adapter = adapt(model, name)
        self.cfg: HookedViTConfig = self.adapter.cfg
        self.name = name or self.cfg.model_name
        #: set by ``pw.load(..., fallback=...)`` when another model stands in for the one asked for
        self.notice: str | None = None
        self._hook_names = self.adapter.hook_names()
        self._points = {n: HookPoint(n) for n in self._hook_names}
        self._hooks: list[tuple[str, HookFn]] = []
        self._labels = list(labels) if labels is not None else None
        self._labels_resolved = labels is not None
        self._tokenizer = tokenizer
        self._transform = transform
        #: host buffers ``run_with_cache`` reuses across calls (see :mod:`prisma_widgets.hooked.arena`)
        self.cache_arena = CacheArena()

    # ----- names and hooks -----
    def hook_names(self) -> list[str]:
        """Every hook name of this model, in execution order."""
        return list(self._hook_names)

    def token_labels(self) -> list[str]:
        """A label per token position: ``["CLS", "r0c0", "r0c1", ...]``."""
        return self.cfg.token_labels()

    def _resolve(self, names_filter: NameFilter) -> list[str]:
        return resolve_filter(names_filter, self._hook_names, self.cfg.n_layers)

    def _active(self, extra: Iterable[tuple[str, HookFn]] = ()) -> ActiveHooks:
        fns: dict[str, list[HookFn]] = {}
        for name, fn in [*self._hooks, *extra]:
            fns.setdefault(name, []).append(fn)
        return ActiveHooks(fns, self._points, self.cfg.n_layers)

    def _expand(self, fwd_hooks: FwdHooks) -> list[tuple[str, HookFn]]:
        pairs: list[tuple[str, HookFn]] = []
        for entry in fwd_hooks:
            if not (isinstance(entry, tuple) and len(entry) == 2 and callable(entry[1])):
                raise TypeError(f"fwd_hooks entries are (name_or_filter, fn) pairs; got {entry!r}")
            name_or_filter, fn = entry
            pairs += [(name, fn) for name in self._resolve(name_or_filter)]
        return pairs

    def add_hook(self, name_or_filter: NameFilter, fn: HookFn) -> None:
        """Attach ``fn(tensor, hook)`` until :meth:`reset_hooks`; returning a tensor replaces the activation."""
        self._hooks += self._expand([(name_or_filter, fn)])

    def reset_hooks(self) -> None:
        """Remove every hook added with :meth:`add_hook`."""
        self._hooks.clear()

    @contextmanager
    def hooks(self, fwd_hooks: FwdHooks) -> Iterator[HookedViT]:
        """Hooks active inside a ``with`` block, removed on exit even if the forward raised.

        >>> with model.hooks([("blocks.0.hook_resid_pre", lambda x, hook: x * 0)]):   # doctest: +SKIP
        ...     ablated = model(images)
        """
        added = self._expand(fwd_hooks)
        self._hooks += added
        try:
            yield self
        finally:
            for pair in added:
                self._hooks.remove(pair)

    # ----- running -----
    @property
    def device(self) -> torch.device:
        for p in self.model.parameters():
            return p.device
        return torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        for p in self.model.parameters():
            return p.dtype
        return torch.float32

    def to_pixels(self, images: ImageLike | Sequence[ImageLike] | torch.Tensor) -> torch.Tensor:
        """A model-ready batch: preprocessed tensors pass through (after a shape check), the rest is preprocessed."""
        if isinstance(images, torch.Tensor) and images.is_floating_point():
            if self.cfg.is_video:
                return check_clip_pixels(images, self.cfg.input_frames, self.cfg.image_size).to(
                    device=self.device, dtype=self.dtype)
            dynamic = bool(getattr(self.adapter.tower, "dynamic_img_size", False))
            pixels = check_pixels(images, self.cfg.image_size, dynamic)
        else:
            pixels = self.preprocess(images)
        return pixels.to(device=self.device, dtype=self.dtype)

    def forward(
        self,
        images: Any,
        *,
        start_at_layer: int | None = None,
        stop_at_layer: int | None = None,
    ) -> torch.Tensor:
        """The model's output (logits, or the CLIP image embedding) with the hooks added by ``add_hook``.

        ``stop_at_layer=l`` returns the residual stream entering block ``l`` ``[batch, pos, d_model]``;
        ``start_at_layer=l`` (0 included) takes that residual stream instead of images.
        """
        return self._run(images, self._active(), start_at_layer, stop_at_layer)

    def _run(self, images: Any, hooks: ActiveHooks, start: int | None, stop: int | None) -> torch.Tensor:
        n_layers = self.cfg.n_layers
        fix = f"Pass a block index in 0..{n_layers} (negative counts from the end), or None."
        start, stop = (check_int(v, name, none_ok=True, fix=fix) for v, name in ((start, "start_at_layer"),
                                                                                (stop, "stop_at_layer")))
        stop = n_layers if stop is None else (stop + n_layers if stop < 0 else stop)
        if not 0 <= (start or 0) <= stop <= n_layers:
            raise ValueError(f"need 0 <= start_at_layer <= stop_at_layer <= {n_layers}; got {start}, {stop}")
        if start is None:  # images in
            pixels = self.to_pixels(images)
            if not hooks and stop == n_layers:
                return self.adapter.plain_forward(pixels)
            x = self.adapter.embed(pixels, hooks)
            start = 0
        else:  # the residual stream entering block `start` in
            x = images
            expected = self.cfg.d_model
            if not (isinstance(x, torch.Tensor) and x.ndim == 3 and x.shape[-1] == expected):
                shape = list(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
                raise ValueError(
                    f"start_at_layer={start} takes the residual stream [batch, {self.cfg.n_tokens}, {expected}]; got {shape}"
                )
        for layer in range(start, stop):
            x = self.adapter.block(layer, x, hooks)
        if stop < n_layers:
            return x
        return self.adapter.head(x, hooks)

    def run_with_hooks(
        self,
        images: Any,
        fwd_hooks: FwdHooks = (),
        *,
        start_at_layer: int | None = None,
        stop_at_layer: int | None = None,
        reset_hooks_end: bool = True,
    ) -> torch.Tensor:
        """Run with ``fwd_hooks = [(name_or_filter, fn), ...]``; a hook returning a tensor replaces the activation.

        >>> def ablate_head(z, hook):   # doctest: +SKIP
        ...     z[:, :, 3] = 0
        ...     return z
        >>> model.run_with_hooks(images, fwd_hooks=[("blocks.2.attn.hook_z", ablate_head)])   # doctest: +SKIP
        """
        pairs = self._expand(fwd_hooks)
        if not reset_hooks_end:
            self._hooks += pairs
            return self._run(images, self._active(), start_at_layer, stop_at_layer)
        return self._run(images, self._active(pairs), start_at_layer, stop_at_layer)

    def run_with_cache(
        self,
        images: Any,
        names_filter: NameFilter = None,
        *,
        stop_at_layer: int | None = None,
        device: torch.device | str | None = None,
        reuse_buffers: bool | None = None,
    ) -> tuple[torch.Tensor, ActivationCache]:
        """Run and keep activations: ``(output, cache)``.

        ``names_filter``: a hook name, a glob (``"blocks.*.hook_resid_post"``), a predicate
        (``lambda name: "resid" in name``), a list of these, or ``None`` for every hook. Asking for
        ``hook_pattern`` or ``hook_attn_scores`` switches those blocks to explicit attention; all else
        keeps the fused kernel. With ``stop_at_layer`` the pass ends there and the output is the residual stream.

        Keeping every hook holds about 1.4 GB for ViT-B/16 at batch 8. So that such memory is not page-faulted in
        afresh on every call, the first call on the host asks glibc to keep freed memory for reuse
        (:mod:`prisma_widgets.hooked.allocator`; ``keep_freed_memory(False)`` there declines). Where that cannot
        be done, or with ``reuse_buffers=True``, activations are copied into buffers kept from earlier calls
        (``model.cache_arena``; ``.release()`` frees them); a buffer is reused only once nothing refers to it
        any more, so tensors you keep from a cache never change. ``reuse_buffers=False`` never copies.
        """
        store: dict[str, torch.Tensor] = {}
        on_host = (self.device if device is None else torch.device(device)).type == "cpu"
        kept = on_host and host_memory_is_kept()
        if reuse_buffers is None:  # CUDA's own allocator caches already
            reuse_buffers = on_host and not kept
        arena = self.cache_arena if reuse_buffers and on_host else None

        def keep(tensor: torch.Tensor, hook: HookPoint) -> None:
            if arena is not None:
                store[hook.name] = arena.copy(hook.name, tensor.detach())
            else:
                store[hook.name] = tensor.detach() if device is None else tensor.detach().to(device)

        pairs = [(name, keep) for name in self._resolve(names_filter)]
        output = self._run(images, self._active(pairs), None, stop_at_layer)
        return output, ActivationCache(store, self.cfg, self._hook_names, self.adapter)

    # ----- images -----
    @property
    def transform(self) -> Callable[[Any], torch.Tensor]:
        """The model's own eval transform (timm data config / open_clip preprocess) for one PIL image."""
        if self._transform is None:
            self._transform = self.adapter.image_transform()
        return self._transform

    def preprocess(self, images: ImageLike | Sequence[ImageLike]) -> torch.Tensor:
        """PIL images, arrays (HWC or CHW, uint8 or float in [0, 1]), paths or a batch -> ``[batch, 3, H, W]``.

        Images of any size go through the model's own eval transform (resize, crop, normalise). Images already
        at the model's input size are taken as framed and only normalised, so ``display_images`` output
        (and ``pw.corrupt(..., model=model)``) round-trips with its pixels on the model's patches.

        A video model (``cfg.is_video``) takes clips: a uint8 ``[T, H, W, 3]`` array, a list of frames, a video
        file (PyAV, ``pip install 'prisma-widgets[video]'``) or a batch of these -> ``[batch, input_frames, 3, H,
        W]``, ``cfg.input_frames`` frames sampled uniformly over each clip as the model's processor does.
        """
        if self.cfg.is_video:
            return preprocess_video(images, self.transform, self.cfg.input_frames, self.cfg.image_size,
                                    self.adapter.normalization()).to(self.device)
        return preprocess(images, self.transform, self.cfg.image_size, self.adapter.normalization()).to(self.device)

    def display_images(self, images: ImageLike | Sequence[ImageLike] | torch.Tensor) -> np.ndarray:
        """The images as the model sees them (resized and cropped, not normalised): uint8 ``[batch, H, W, 3]``;
        a video model's clips as its sampled frames, ``[batch, input_frames, H, W, 3]``."""
        pixels = self.to_pixels(images).detach().float().cpu()
        mean, std = self.adapter.normalization()
        pixels = pixels * torch.tensor(std).view(3, 1, 1) + torch.tensor(mean).view(3, 1, 1)
        return (pixels.clamp(0, 1) * 255).round().to(torch.uint8).movedim(-3, -1).numpy()

    # ----- vocabularies -----
    @property
    def labels(self) -> list[str] | None:
        """Class names for classifier heads (ImageNet names for 1000-class timm heads), else ``None``."""
        if not self._labels_resolved:
            self._labels = self.adapter.labels()
            self._labels_resolved = True
        return self._labels

    @labels.setter
    def labels(self, value: Sequence[str] | None) -> None:
        if value is not None and self.cfg.n_classes is not None and len(value) != self.cfg.n_classes:
            raise ValueError(f"this head has {self.cfg.n_classes} classes; got {len(value)} labels. Pass one name per "
                             "class (or None for the model's own)")
        self._labels = list(value) if value is not None else None
        self._labels_resolved = True

    @property
    def tokenizer(self) -> Callable[[list[str]], torch.Tensor]:
        """The text tokenizer of an image-text model (``list[str] -> LongTensor``)."""
        if self._tokenizer is None:
            self._tokenizer = self.adapter.default_tokenizer()
        return self._tokenizer

    def encode_text(self, prompts: str | Sequence[str] | torch.Tensor, normalize: bool = False) -> torch.Tensor:
        """Text embeddings ``[n_prompts, d_output]`` of an image-text model (CLIP), for prompts or token ids."""
        return self.adapter.encode_text(self.to_tokens(prompts), normalize=normalize)

    @property
    def logit_scale(self) -> float:
        """An image-text model's learned temperature, ``exp(logit_scale)``."""
        return self.adapter.logit_scale()

    # ----- the text tower (image-text models) -----
    def text_hook_names(self) -> list[str]:
        """Every hook of the text tower (``text.hook_embed``, ``text.blocks.{l}...``, ``text.hook_text_embed``)."""
        return self.adapter.text_tower().hook_names()

    def to_tokens(self, prompts: str | Sequence[str] | torch.Tensor) -> torch.Tensor:
        """Prompts through the model's tokenizer (token id tensors pass through) on the model's device."""
        if isinstance(prompts, torch.Tensor):
            tokens = prompts
        else:
            prompts = check_strings([prompts] if isinstance(prompts, str) else prompts, "prompts")
            tokens = self.tokenizer(prompts)
        return check_tokens(tokens, self.adapter).to(self.device)

    def run_text_with_hooks(self, prompts: str | Sequence[str] | torch.Tensor, fwd_hooks: FwdHooks = ()) -> torch.Tensor:
        """The prompts' text embeddings ``[n, d_output]`` (not normalised) with hooks on the text tower.

        >>> model.run_text_with_hooks(["a cat"], [("text.blocks.0.hook_resid_post", ablate)])   # doctest: +SKIP
        """
        tower = self.adapter.text_tower()
        names = tower.hook_names()
        pairs: list[tuple[str, HookFn]] = []
        for entry in fwd_hooks:
            if not (isinstance(entry, tuple) and len(entry) == 2 and callable(entry[1])):
                raise TypeError(f"fwd_hooks entries are (name_or_filter, fn) pairs; got {entry!r}")
            pairs += [(n, entry[1]) for n in resolve_filter(entry[0], names, tower.n_layers)]
        tokens = self.to_tokens(prompts)
        if not pairs:  # the library's own text forward
            return self.adapter.encode_text(tokens, normalize=False)
        fns: dict[str, list[HookFn]] = {}
        for name, fn in pairs:
            fns.setdefault(name, []).append(fn)
        points = {n: HookPoint(n) for n in fns}
        return tower.forward(tokens, ActiveHooks(fns, points, tower.n_layers, prefix="text."))

    def run_text_with_cache(
        self, prompts: str | Sequence[str] | torch.Tensor, names_filter: NameFilter = None
    ) -> tuple[torch.Tensor, ActivationCache]:
        """Run prompts through the text tower and keep its activations: ``(text embeddings, cache)``.

        ``names_filter`` selects among :meth:`text_hook_names` (names, globs, predicates, lists, ``None`` for
        all); look activations up by full name, e.g. ``cache["text.blocks.0.hook_resid_post"]``.

        Example:
            >>> import prisma_widgets as pw
            >>> clip = pw.load("mouse-clip")
            >>> emb, cache = clip.run_text_with_cache(["a photo of a circle"], "text.blocks.*.hook_resid_post")
            >>> emb.shape[0], len(cache) == clip.adapter.text_tower().n_layers
            (1, True)
        """
        tower = self.adapter.text_tower()
        names = tower.hook_names()
        store: dict[str, torch.Tensor] = {}

        def keep(tensor: torch.Tensor, hook: HookPoint) -> None:
            store[hook.name] = tensor.detach()

        chosen = resolve_filter(names_filter, names, tower.n_layers)
        out = self.run_text_with_hooks(prompts, [(chosen, keep)] if chosen else [])
        return out, ActivationCache(store, self.cfg, names)

    def __repr__(self) -> str:
        c = self.cfg
        return (
            f"HookedViT({self.name or type(self.model).__name__}: {c.n_layers} layers, {c.n_heads} heads, d_model {c.d_model}, "
            f"{c.image_size[0]}x{c.image_size[1]} px, grid {c.grid[0]}x{c.grid[1]}"
            + (f" x {c.frames} frames ({c.input_frames} input frames)" if c.is_video else "")
            + f", {c.n_prefix_tokens} prefix tokens)"
        )
