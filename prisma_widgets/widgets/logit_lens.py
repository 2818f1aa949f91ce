"""``LogitLens``: what every patch predicts at every layer, drawn over the image.

The model's own readout (:func:`prisma_widgets.analysis.logit_lens`) is applied to every token at every
layer. The view colours each patch by its top-1 class (a legend maps colours to labels), or shows the
probability of one class, the entropy, the KL divergence to the last layer, or the rank of the final
class. A layer slider (with a play button) walks through the layers; hovering a patch shows its top-k
table and the trajectory of its final top classes across layers. For CLIP the prompts are editable in
the view: the kernel recomputes the lens and the view redraws.

What travels (Python computes every number; the front end only draws):

* ``top_indices`` ``[L, T, K]`` (uint8 when the vocabulary has at most 256 classes, else uint16) and
  ``top_probs`` ``[L, T, K]`` uint8 with one float32 scale per ``(layer, token)`` (``top_scale``);
* ``entropy``, ``kl`` float32 ``[L, T]`` and ``final_rank`` ``[L, T]`` (exact);
* ``class_probs`` ``[L, n, T]`` uint8 with one scale per ``(layer, class)`` for the ``n`` classes in
  ``class_ids`` (every class when the vocabulary is small, else the most frequent top-1 classes, plus
  ``target_class``);
* ``track_indices`` ``[T, K]`` (each token's top-k at the last layer) and ``track_probs`` ``[T, K, L]``
  uint8 with one scale per token: the line chart.

So 1000 classes x 12 layers x 197 tokens cost about 0.3 MB instead of 9.5 MB of float32 probabilities.
Every uint8 value ``v`` is within ``max(row) / 510`` of the true one (:data:`QUANTIZATION_BOUND`):
half a colour step when the colour range is the row's own maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from ..analysis.logit_lens import lens_statistics
from ..analysis.readout import needs_prompts
from ..hooked.config import layer_list
from ..validate import check_int, check_strings
from ._base import (
    ArrayTrait,
    PrismaWidget,
    bundle_css,
    bundle_esm,
    check_position,
    check_shown,
    decode_array,
    dequantize_rows,
    encode_array,
    quantize_rows,
    to_numpy,
)
from ._layout import infer_layout
from .frames import FrameTraits, frame_major_tokens, frame_state, frame_token_labels, infer_frame_layout

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

MODES = ("top1", "class_prob", "entropy", "kl", "rank")
NORMALIZATIONS = ("layer", "global")

#: Largest absolute error of a probability sent as uint8, as a fraction of its row's maximum.
QUANTIZATION_BOUND = 1.0 / 510.0

#: Classes with a full probability map when the vocabulary is large (most frequent top-1 classes first).
DEFAULT_MAX_CLASSES = 48


# --------------------------------------------------------------------------------------------------
# the synced state, from per-token logits
# --------------------------------------------------------------------------------------------------
def _index_dtype(n_classes: int) -> str:
    return "uint8" if n_classes <= 256 else "uint16" if n_classes <= 65536 else "uint32"


def _choose_classes(
    top1: np.ndarray, n_prefix: int, n_classes: int, max_classes: int, extra: Sequence[int]
) -> list[int]:
    """Classes that get a full map: all of a small vocabulary; else top-1 classes by frequency."""
    if n_classes <= max_classes:
        return list(range(n_classes))
    patches = top1[:, n_prefix:] if top1.shape[1] > n_prefix else top1
    counts = np.bincount(patches.reshape(-1), minlength=n_classes)
    # ties broken by how often the class is top-1 at the last layer, then by index
    last = np.bincount(patches[-1].reshape(-1), minlength=n_classes)
    order = np.lexsort((np.arange(n_classes), -last, -counts))
    chosen = [int(c) for c in order[:max_classes] if counts[c] > 0]
    for c in extra:
        if 0 <= c < n_classes and c not in chosen:
            chosen.append(int(c))
    return chosen


def _class_arrays(probs: np.ndarray, class_ids: list[int]) -> dict[str, Any]:
    sel = probs[:, :, class_ids].transpose(0, 2, 1) if class_ids else np.zeros((probs.shape[0], 0, probs.shape[1]))
    q, s = quantize_rows(sel)  # [L, n, T], one scale per (layer, class)
    return {"class_ids": [int(c) for c in class_ids], "class_probs": encode_array(q), "class_scale": encode_array(s)}


def lens_state(
    logits: np.ndarray,
    *,
    top_k: int,
    max_classes: int,
    target_class: int,
    keep: list[int],
    layers: list[int],
    class_names: Sequence[str] | None,
    grid: tuple[int, int],
    n_prefix_tokens: int,
    token_labels: list[str],
    site: str,
) -> tuple[dict[str, Any], np.ndarray]:
    """``(synced state, probabilities [L, T, C])`` of ``logits`` ``[L_all, T, C]`` (last entry = the reference
    for ``kl`` and ``rank``) at the layer entries ``keep``."""
    check_int(max_classes, "max_classes", at_least=1, example=DEFAULT_MAX_CLASSES)
    stats = lens_statistics(logits, top_k=top_k)
    n_classes = logits.shape[-1]
    probs = stats["probs"][keep].astype(np.float32)
    top_i = stats["top_indices"][keep]
    top_p = stats["top_probs"][keep]
    idx_dtype = _index_dtype(n_classes)
    qp, sp = quantize_rows(top_p)
    # the trajectory: each token's top-k at the last layer, through every shown layer
    last_top = stats["top_indices"][-1]  # [T, K]
    at = np.broadcast_to(last_top[None], (len(keep),) + last_top.shape)
    traj = np.take_along_axis(probs, at, -1)  # [L, T, K]
    traj = traj.transpose(1, 2, 0)  # [T, K, L]
    T, K, L = traj.shape
    qt, st = quantize_rows(traj.reshape(T, K * L))
    extra = [target_class] if target_class >= 0 else []
    class_ids = _choose_classes(top_i[..., 0], n_prefix_tokens, n_classes, max_classes, extra)
    names = [str(x) for x in class_names] if class_names is not None else [f"class {i}" for i in range(n_classes)]
    n_tokens = logits.shape[1]
    if len(token_labels) != n_tokens:
        raise ValueError(f"{len(token_labels)} token labels for {n_tokens} tokens")
    rank_dtype = "uint16" if n_classes <= 65536 else "uint32"
    state = {
        "grid": [int(grid[0]), int(grid[1])],
        "n_prefix_tokens": int(n_prefix_tokens),
        "token_labels": [str(t) for t in token_labels],
        "layer_indices": [int(x) for x in layers],
        "class_names": names,
        "max_entropy": float(math.log(n_classes)) if n_classes > 0 else 0.0,
        "site": site,
        "top_indices": encode_array(top_i, idx_dtype),
        "top_probs": encode_array(qp),
        "top_scale": encode_array(sp),
        "entropy": encode_array(stats["entropy"][keep], "float32"),
        "kl": encode_array(stats["kl"][keep], "float32"),
        "final_rank": encode_array(stats["final_rank"][keep], rank_dtype),
        "track_indices": encode_array(last_top, idx_dtype),
        "track_probs": encode_array(qt.reshape(T, K, L)),
        "track_scale": encode_array(st),
        **_class_arrays(probs, class_ids),
    }
    return state, probs


# --------------------------------------------------------------------------------------------------
# widget
# --------------------------------------------------------------------------------------------------
class LogitLens(FrameTraits, PrismaWidget):
    """The logit lens of one image: every patch's prediction at every layer, over the image.

    Args:
        model: a :class:`prisma_widgets.HookedViT` (timm classifier or open_clip CLIP).
        image: one image (PIL, array HWC/CHW, path); for a video model one clip ([T, H, W, 3], frames, a file).
        labels: display names for the classes (default: the model's labels, or the prompts for CLIP).
        prompts: CLIP only: the texts to read out against (editable in the view; the kernel recomputes).
        layers: which layers (default all); the last one is the reference for ``kl`` and ``rank``.
        site: ``"resid_post"`` (default), ``"resid_mid"`` or ``"resid_pre"``.
        top_k: how many classes per token in the table and the line chart.
        max_classes: for a large vocabulary, how many classes (most frequent top-1 first) get a full
            probability map (the legend and the ``class_prob`` mode); a small vocabulary sends all.
        **traits: initial values of the synced traits below.

    Synced traits (both ways):
        ``layer``: the model layer shown. ``patch``: the selected token position (prefix tokens first).
        ``target_class``: the class whose probability ``class_prob`` mode shows (``-1``: none yet).
        ``mode``: ``"top1"``, ``"class_prob"``, ``"entropy"``, ``"kl"`` (KL(p_last || p_layer), nats)
        or ``"rank"`` (rank of the last layer's top-1 class, 0 = top). ``prompts``: CLIP prompts.
        ``normalization``: colour range per ``"layer"`` or ``"global"`` (all layers). ``image_label``:
        the image's name, which a PNG export's caption shows with ``model_name`` and the layer.

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> scenes = pw.zoo.scenes(1, seed=3)
        >>> lens = pw.LogitLens(model, scenes.images[0])
        >>> lens.layer_indices, lens.class_names[:3]
        ([0, 1, 2, 3], ['circle', 'square', 'triangle'])
        >>> lens.layer, lens.patch = 2, 10     # the view shows layer 2 and the top-k of token 10 (r1c1)
        >>> indices, probs = lens.top_values() # what the view draws: [layer, token, k]
        >>> probs.shape
        (4, 65, 5)
    """

    _widget_name = "logit_lens"
    _esm = bundle_esm("logit_lens")
    _css = bundle_css("logit_lens")

    # data (binary)
    image_pixels = ArrayTrait()  # uint8 [H, W, 3] or {}
    top_indices = ArrayTrait()  # uint8/uint16 [L, T, K]
    top_probs = ArrayTrait()  # uint8 [L, T, K]
    top_scale = ArrayTrait()  # float32 [L, T]
    entropy = ArrayTrait()  # float32 [L, T]
    kl = ArrayTrait()  # float32 [L, T]
    final_rank = ArrayTrait()  # uint16/uint32 [L, T]
    class_probs = ArrayTrait()  # uint8 [L, n, T]
    class_scale = ArrayTrait()  # float32 [L, n]
    track_indices = ArrayTrait()  # uint8/uint16 [T, K]
    track_probs = ArrayTrait()  # uint8 [T, K, L]
    track_scale = ArrayTrait()  # float32 [T]
    # layout and names (JSON)
    grid = traitlets.List(traitlets.Int(), default_value=[1, 1]).tag(sync=True)
    n_prefix_tokens = traitlets.Int(0).tag(sync=True)
    token_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    layer_indices = traitlets.List(traitlets.Int()).tag(sync=True)
    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    class_ids = traitlets.List(traitlets.Int()).tag(sync=True)
    max_entropy = traitlets.Float(0.0).tag(sync=True)
    site = traitlets.Unicode("resid_post").tag(sync=True)
    image_label = traitlets.Unicode("").tag(sync=True)
    # selection, both ways
    layer = traitlets.Int(0).tag(sync=True)
    patch = traitlets.Int(0).tag(sync=True)
    target_class = traitlets.Int(-1).tag(sync=True)
    mode = traitlets.Enum(MODES, default_value="top1").tag(sync=True)
    prompts = traitlets.List(traitlets.Unicode()).tag(sync=True)
    normalization = traitlets.Enum(NORMALIZATIONS, default_value="global").tag(sync=True)
    # prompt editing: only a widget that holds a CLIP model and a kernel can recompute
    prompts_editable = traitlets.Bool(False).tag(sync=True)
    prompt_note = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    # look
    show_labels = traitlets.Bool(False).tag(sync=True)
    opacity = traitlets.Float(0.65, min=0.0, max=1.0).tag(sync=True)
    size = traitlets.Int(320, min=64, max=4096).tag(sync=True)
    play_interval_ms = traitlets.Int(700, min=50, max=60000).tag(sync=True)

    def __init__(
        self,
        model: HookedViT,
        image: Any = None,
        labels: Sequence[str] | None = None,
        prompts: Sequence[str] | None = None,
        *,
        layers: Sequence[int] | None = None,
        site: str = "resid_post",
        top_k: int = 5,
        max_classes: int = DEFAULT_MAX_CLASSES,
        **traits: Any,
    ) -> None:
        self._init_private()
        cfg = model.cfg
        editable = needs_prompts(model)
        if editable and not prompts:
            raise ValueError("a CLIP logit lens reads out against text: pass prompts=['a photo of a cat', ...]")
        if image is None:
            raise ValueError("pass the image to read out")
        self._model, self._image = model, image
        self._top_k = check_int(top_k, "top_k", at_least=1, example=5)
        self._max_classes = check_int(max_classes, "max_classes", at_least=1, example=DEFAULT_MAX_CLASSES)
        self._labels = list(labels) if labels is not None else None
        self._layers_arg = layer_list(layers, cfg.n_layers)
        state = self._compute(check_strings(prompts, "prompts") if prompts else None, site)
        state.update(frame_state(model.display_images([image])[0], cfg.frames))  # a clip: one image per frame
        state["prompts"] = list(prompts) if prompts else []
        state["prompts_editable"] = editable
        state["prompt_note"] = ""
        state["model_name"] = str(model.name or "")
        self._init_traits(self._order(state))
        self._apply_options(dict(traits))

    def _init_private(self) -> None:
        self._model: HookedViT | None = None
        self._image: Any = None
        self._probs: np.ndarray | None = None
        self._labels: list[str] | None = None
        self._layers_arg: list[int] | None = None
        self._top_k = 5
        self._max_classes = DEFAULT_MAX_CLASSES

    # ------------------------------------------------------------------------------------------
    def _compute(self, prompts: list[str] | None, site: str, target_class: int = -1) -> dict[str, Any]:
        """Run the analysis on the held model and image; the state of every data trait."""
        from ..analysis.logit_lens import logit_lens

        model = self._model
        assert model is not None
        cfg = model.cfg
        shown = list(range(cfg.n_layers)) if self._layers_arg is None else sorted(set(self._layers_arg))
        # the reference (kl, rank) is always the model's last layer
        computed = sorted(set(shown) | {cfg.n_layers - 1})
        lens = logit_lens(model, [self._image], layers=computed, site=site, top_k=1, prompts=prompts)
        logits, token_labels = frame_major_tokens(to_numpy(lens.logits[0]).astype(np.float32), lens)  # [L, T, C]
        names = self._labels
        if names is None:
            names = list(lens.class_names) if lens.class_names is not None else None
        if names is not None and len(names) != logits.shape[-1]:
            raise ValueError(f"{len(names)} labels for {logits.shape[-1]} classes")
        state, self._probs = lens_state(
            logits,
            top_k=self._top_k,
            max_classes=self._max_classes,
            target_class=target_class,
            keep=[computed.index(x) for x in shown],
            layers=shown,
            class_names=names,
            grid=tuple(lens.grid),
            n_prefix_tokens=lens.n_prefix_tokens,
            token_labels=token_labels,
            site=site,
        )
        return state

    @staticmethod
    def _order(state: dict[str, Any]) -> dict[str, Any]:
        """Layout first, selection last: the validators check the selection against the layout."""
        layers = state["layer_indices"]
        rows, cols = state["grid"]
        prefix = state["n_prefix_tokens"]
        state.setdefault("layer", layers[-1])
        state.setdefault("patch", prefix + (rows // 2) * cols + cols // 2)
        return state

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        logits: Any,
        image: Any = None,
        *,
        grid: Sequence[int] | None = None,
        n_prefix_tokens: int | None = None,
        token_labels: Sequence[str] | None = None,
        layers: Sequence[int] | None = None,
        class_names: Sequence[str] | None = None,
        top_k: int = 5,
        max_classes: int = DEFAULT_MAX_CLASSES,
        site: str = "resid_post",
        prompts: Sequence[str] | None = None,
        **traits: Any,
    ) -> LogitLens:
        """Show a lens you computed.

        Args:
            logits: a :class:`~prisma_widgets.analysis.logit_lens.LogitLensResult` (its first image), or
                logits ``[layers, tokens, classes]`` / ``[1, layers, tokens, classes]`` (numpy or torch).
                The last layer is the reference for ``kl`` and ``rank``.
            image: the image (uint8 or float HWC/CHW, PIL), or with ``frames=F`` a clip ``[T, H, W, 3]``
                (tokens ``prefix + F x rows x cols``, frame-major); ``None`` draws on grey.
            grid, n_prefix_tokens, token_labels, layers, class_names: the layout and names (taken from
                a LogitLensResult; inferred for square grids otherwise).
            prompts: the CLIP prompts of this lens, shown read-only (no model here to recompute).
        """
        result = logits if hasattr(logits, "top_k_indices") and hasattr(logits, "grid") else None
        if result is not None:
            arr = to_numpy(result.logits[0])
            grid = result.grid if grid is None else grid
            n_prefix_tokens = result.n_prefix_tokens if n_prefix_tokens is None else n_prefix_tokens
            token_labels = result.token_labels if token_labels is None else token_labels
            layers = result.layers if layers is None else layers
            class_names = result.class_names if class_names is None else class_names
            site = result.site
        else:
            arr = to_numpy(logits)
        arr = np.asarray(arr, dtype=np.float32)
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 3:
            raise ValueError(
                f"logits must be [layers, tokens, classes] or [1, layers, tokens, classes], got {arr.shape}"
            )
        frames = check_int(traits.pop("frames", 1), "frames", at_least=1, example=4)  # a clip: its token frames
        g, prefix = (infer_frame_layout(arr.shape[1], frames, grid, n_prefix_tokens) if frames > 1
                     else infer_layout(arr.shape[1], grid, n_prefix_tokens))
        layer_list = list(range(arr.shape[0])) if layers is None else [int(x) for x in layers]
        if len(layer_list) != arr.shape[0]:
            raise ValueError(f"{len(layer_list)} layer indices for {arr.shape[0]} layers of logits")
        labels = list(token_labels) if token_labels is not None else frame_token_labels(g, prefix, frames)
        if class_names is None and prompts:
            class_names = list(prompts)
        if class_names is not None and len(class_names) != arr.shape[-1]:
            raise ValueError(f"{len(class_names)} class names for {arr.shape[-1]} classes")
        state, probs = lens_state(
            arr,
            top_k=int(top_k),
            max_classes=int(max_classes),
            target_class=-1,
            keep=list(range(arr.shape[0])),
            layers=layer_list,
            class_names=class_names,
            grid=g,
            n_prefix_tokens=prefix,
            token_labels=labels,
            site=site,
        )
        state.update(frame_state(image, frames))  # image_pixels, and for a clip its frames as images
        state["prompts"] = [str(p) for p in prompts] if prompts else []
        state["prompts_editable"] = False
        note = "read-only: built from arrays, there is no model to recompute the lens"
        state["prompt_note"] = note if prompts else ""
        return cls._from_state(cls._order(state), traits, _probs=probs, _top_k=int(top_k),
                               _max_classes=int(max_classes))

    # ------------------------------------------------------------------------------------------
    @traitlets.validate("layer")
    def _v_layer(self, proposal: Any) -> int:
        return check_shown(proposal["value"], self.layer_indices, "layer")

    @traitlets.validate("patch")
    def _v_patch(self, proposal: Any) -> int:
        return check_position(proposal["value"], len(self.token_labels), "patch", "token position")

    @traitlets.validate("target_class")
    def _v_target_class(self, proposal: Any) -> int:
        v = int(proposal["value"])
        if self.class_names and not -1 <= v < len(self.class_names):
            raise traitlets.TraitError(f"target_class must be -1 or a class index in [0, {len(self.class_names)})")
        return v

    @traitlets.observe("target_class")
    def _on_target_class(self, change: Any) -> None:
        c = int(change["new"])
        if self._is_quiet or c < 0 or c in self.class_ids or self._probs is None:
            return
        # a class without a map yet: add it (this needs the kernel; a saved page has only class_ids)
        self._set_quietly(_class_arrays(self._probs, list(self.class_ids) + [c]))

    @traitlets.observe("prompts")
    def _on_prompts(self, change: Any) -> None:
        if self._is_quiet or list(change["old"] or []) == list(change["new"] or []):
            return
        if self._model is None or not needs_prompts(self._model):
            self._revert(
                change["old"],
                "prompts can only be edited on a CLIP lens built with pw.LogitLens(model, image, prompts=...)",
            )
            return
        prompts = [str(p).strip() for p in change["new"]]
        if not prompts or any(not p for p in prompts):
            self._revert(change["old"], "every prompt needs some text, and there must be at least one")
            return
        self.status = "recomputing…"
        target = self.target_class if self.target_class < len(prompts) else -1
        try:
            old_names = self._labels
            if self._labels is not None and len(self._labels) != len(prompts):
                self._labels = None  # display names no longer match: show the prompts themselves
            state = self._compute(prompts, self.site, target)
        except Exception as err:  # noqa: BLE001  (shown in the view, the old lens stays)
            self._labels = old_names
            self._revert(change["old"], f"could not recompute: {err}")
            return
        self._set_quietly({"target_class": target, **state, "status": ""})

    def _revert(self, old: list[str], message: str) -> None:
        self._set_quietly({"prompts": list(old), "status": message})

    def _saved_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """A saved page has no kernel: the prompt list in it is read-only and says so."""
        state = dict(state, prompts_editable=False, status="")
        if state.get("prompts"):
            state["prompt_note"] = "read-only: this saved page has no kernel to recompute the lens"
        return state

    # what the front end reads, dequantised (for tests and for users who want the numbers)
    def top_values(self) -> tuple[np.ndarray, np.ndarray]:
        """``(indices [L, T, K], probabilities [L, T, K])`` as the view reads them."""
        i = decode_array(self.top_indices)
        q = decode_array(self.top_probs)
        s = decode_array(self.top_scale)
        if i is None or q is None or s is None:
            raise ValueError("this lens holds no data")
        return i.astype(np.int64), dequantize_rows(q, s)

    def class_prob_values(self) -> tuple[list[int], np.ndarray]:
        """``(class_ids, probabilities [L, n, T])`` as the view reads them."""
        q = decode_array(self.class_probs)
        s = decode_array(self.class_scale)
        if q is None or s is None:
            raise ValueError("this lens holds no data")
        return list(self.class_ids), dequantize_rows(q, s)

    def track_values(self) -> tuple[np.ndarray, np.ndarray]:
        """``(indices [T, K], probabilities [T, K, L])``: each token's final top-k through the layers."""
        i = decode_array(self.track_indices)
        q = decode_array(self.track_probs)
        s = decode_array(self.track_scale)
        if i is None or q is None or s is None:
            raise ValueError("this lens holds no data")
        T, K, L = q.shape
        return i.astype(np.int64), dequantize_rows(q.reshape(T, K * L), s).reshape(T, K, L)

    def probabilities(self) -> np.ndarray | None:
        """The full probabilities ``[L, T, C]`` held in Python (not sent to the view)."""
        return self._probs
