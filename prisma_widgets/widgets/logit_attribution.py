"""``LogitAttribution``: which head, which layer, which patch wrote the answer.

Direct logit attribution (:func:`prisma_widgets.analysis.direct_logit_attribution`) of one image, as a
layers x heads heatmap of each head's direct contribution to the target's score, with a column per layer
for all its heads together and for its MLP, and cells for the embedding and the biases, on a diverging
colour bar centred at 0 in logit units. Hover a cell for its value; click a head: where its contribution
comes from (source patches, over the image) and its attention from the pooled token. The target picker
lists the classes (or the CLIP prompts, editable: the kernel recomputes) and a second class for a
difference. Every class's decomposition travels, so changing the target needs no kernel; the position maps
travel for the top classes (all of a small vocabulary), and the kernel adds a new target's.

Link it to an :class:`~prisma_widgets.AttentionGrid` (or a head-mode
:class:`~prisma_widgets.PatchingHeatmap`) with :func:`prisma_widgets.link`: clicking a head here moves
them, in the kernel and in a page saved with :func:`prisma_widgets.save_html`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import traitlets

from ..analysis.logit_attribution import position_split_refusal
from ..analysis.readout import needs_prompts
from ._base import COLORMAPS, ArrayTrait, PrismaWidget, bundle_css, bundle_esm, decode_array, encode_array, to_numpy
from ._layout import as_uint8_image
from .attribution_state import (
    DEFAULT_POSITION_CLASSES,
    NORMALIZATIONS,
    PARTS,
    attribution_state,
    default_selection,
    position_classes_for,
    position_state,
)

if TYPE_CHECKING:
    from ..analysis.logit_attribution import DirectLogitAttribution
    from ..hooked.model import HookedViT


class LogitAttribution(PrismaWidget):
    """Direct logit attribution of one image: every head's, MLP's and the embedding's share of a score.

    Args:
        model: a :class:`prisma_widgets.HookedViT` (a classifier, or CLIP with prompts).
        image: one image (PIL, array HWC/CHW, path).
        target: a class index or name, a CLIP prompt, or a pair ``(a, b)`` for ``score(a) - score(b)``
            (default: the predicted class).
        prompts: CLIP only: the texts to score against (editable in the view; the kernel recomputes).
        heads: one cell per head (default), or per layer's attention for models without per-head writes.
        max_position_classes: vocabularies larger than this send position maps for the best-scoring classes
            only (plus the target); the kernel adds others when the target changes.
        **traits: initial values of the synced traits below.

    Synced traits (both ways):
        ``target``: the class (index) whose score is split; ``versus``: a second class for the difference
        ``score(target) - score(versus)`` (``-1``: none). ``layer``, ``head``: the selected head;
        ``part``: what is selected, ``"head"``, ``"attn"`` (the layer's heads together), ``"mlp"``,
        ``"embed"`` or ``"bias"``. ``prompts``: CLIP prompts. ``normalization``: the colour range over
        ``"all"`` cells or the ``"heads"`` only (large MLP or embedding values saturate).

    Example:
        >>> import prisma_widgets as pw
        >>> model = pw.load("mouse-vit")
        >>> image = pw.zoo.scenes(1, seed=2).images[0]
        >>> w = pw.LogitAttribution(model, image)
        >>> w.class_names[w.target], w.labels[:2]
        ('circle', ['embed', 'L0H0'])
        >>> values = w.values()                 # what the heatmap shows: [component], in logits
        >>> abs(float(values.sum()) - w.logit()) < 1e-4
        True
        >>> w.target, w.versus = 4, 0           # "heart" minus "circle": the view follows
        >>> w.layer, w.head = 3, 1              # and opens that head's source map
    """

    _widget_name = "logit_attribution"
    _esm = bundle_esm("logit_attribution")
    _css = bundle_css("logit_attribution")
    #: the head selection, for prisma_widgets.link (see widgets/link.py)
    _head_link = {
        "fields": {"layer": "layer", "head": "head"},
        "count": {"layer": "n_layers", "head": "n_heads"},
        "read_when": {"part": ["head"]},
        "also_set": {"part": "head"},
    }

    # data (binary)
    component_values = ArrayTrait()  # float32 [component, class]
    class_scores = ArrayTrait()  # float32 [class]
    position_values = ArrayTrait()  # float32 [k, component, token] or {}
    pooled_attention = ArrayTrait()  # float32 [layer, head, token] or {}
    image_pixels = ArrayTrait()  # uint8 [H, W, 3] or {}
    # layout and names (JSON)
    labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    n_layers = traitlets.Int(0).tag(sync=True)
    n_heads = traitlets.Int(0).tag(sync=True)
    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    position_class_ids = traitlets.List(traitlets.Int()).tag(sync=True)
    grid = traitlets.List(traitlets.Int(), default_value=[1, 1]).tag(sync=True)
    n_prefix_tokens = traitlets.Int(0).tag(sync=True)
    token_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    # selection, both ways
    target = traitlets.Int(0).tag(sync=True)
    versus = traitlets.Int(-1).tag(sync=True)
    layer = traitlets.Int(0).tag(sync=True)
    head = traitlets.Int(0).tag(sync=True)
    part = traitlets.Enum(PARTS, default_value="head").tag(sync=True)
    normalization = traitlets.Enum(NORMALIZATIONS, default_value="all").tag(sync=True)
    prompts = traitlets.List(traitlets.Unicode()).tag(sync=True)
    # the kernel round trip
    prompts_editable = traitlets.Bool(False).tag(sync=True)
    prompt_note = traitlets.Unicode("").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    # look
    colormap = traitlets.CaselessStrEnum(COLORMAPS, default_value="rdbu").tag(sync=True)
    cell_size = traitlets.Int(28).tag(sync=True)
    map_size = traitlets.Int(180).tag(sync=True)
    opacity = traitlets.Float(0.75).tag(sync=True)

    def __init__(
        self,
        model: HookedViT,
        image: Any = None,
        target: Any = None,
        prompts: Sequence[str] | None = None,
        *,
        heads: bool = True,
        max_position_classes: int = DEFAULT_POSITION_CLASSES,
        **traits: Any,
    ) -> None:
        from ..analysis.logit_attribution import direct_logit_attribution

        self._init_private()
        if image is None:
            raise ValueError("pass the image to attribute: LogitAttribution(model, image)")
        if isinstance(image, (list, tuple)):
            if len(image) != 1:
                raise ValueError(f"LogitAttribution shows one image; got {len(image)} (pass images[i])")
            image = image[0]
        self._model, self._image, self._heads = model, image, bool(heads)
        self._max_classes = int(max_position_classes)
        # the target first (without position maps: cheap), then the maps for the classes it makes relevant
        dla = direct_logit_attribution(model, [image], target=target, prompts=prompts, heads=heads)
        t, v = int(dla.target[0]), int(dla.versus[0]) if dla.versus is not None else -1
        clip = needs_prompts(model)
        state = self._compute(list(dla.class_names) if clip else None, [t, v], to_numpy(dla.scores[0]))
        state["image_pixels"] = encode_array(model.display_images([image])[0])
        state["prompts"] = list(dla.class_names) if needs_prompts(model) else []
        state["prompts_editable"] = needs_prompts(model)
        state["model_name"] = str(model.name or "")
        state.update({"target": t, "versus": v, **self._selection(t, v)})
        self._init_traits(state)
        self._apply_options(traits)

    def _init_private(self) -> None:
        self._model: HookedViT | None = None
        self._image: Any = None
        self._heads = True
        self._max_classes = DEFAULT_POSITION_CLASSES
        self._result: DirectLogitAttribution | None = None

    def _compute(self, prompts: list[str] | None, keep: Sequence[int], scores: np.ndarray | None = None) -> dict[str, Any]:
        """Run the attribution with position maps for the classes worth sending (the best-scoring ones:
        ``scores``, computed here when not given); every data trait's state."""
        from ..analysis.logit_attribution import direct_logit_attribution

        model = self._model
        assert model is not None
        if scores is None:
            first = direct_logit_attribution(model, [self._image], prompts=prompts, heads=self._heads)
            scores = to_numpy(first.scores[0])
        why = position_split_refusal(model, self._heads)
        if why is not None:  # the values stand; the source maps would not add up, so none travel
            self._result = direct_logit_attribution(model, [self._image], prompts=prompts, heads=self._heads)
            return {**attribution_state(self._result), "status": f"no position maps: {why}"}
        classes = position_classes_for(scores, [k for k in keep if k >= 0], self._max_classes)
        self._result = direct_logit_attribution(model, [self._image], prompts=prompts, heads=self._heads,
                                                by_position=True, position_classes=classes)
        return attribution_state(self._result)

    def _selection(self, target: int, versus: int) -> dict[str, Any]:
        assert self._result is not None
        return default_selection(self._result, 0, target, versus)

    # ------------------------------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        attribution: DirectLogitAttribution,
        image: Any = None,
        *,
        index: int = 0,
        **traits: Any,
    ) -> LogitAttribution:
        """Show a :class:`~prisma_widgets.analysis.DirectLogitAttribution` you computed (image ``index``).

        Its every-class values travel as they are; position maps only if it was computed with
        ``by_position=True, position_classes=[...]``. No model here: targets outside those classes show no
        map, and CLIP prompts are read-only.
        """
        state = attribution_state(attribution, index)
        display = as_uint8_image(image)
        state["image_pixels"] = encode_array(display) if display is not None else {}
        state["prompts"] = []
        state["prompts_editable"] = False
        t = int(attribution.target[index])
        v = int(attribution.versus[index]) if attribution.versus is not None else -1
        state.update({"target": t, "versus": v, **default_selection(attribution, index, t, v)})
        return cls._from_state(state, traits, _result=attribution)

    # ------------------------------------------------------------------------------------------
    @traitlets.validate("target", "versus")
    def _v_class(self, proposal: Any) -> int:
        v = int(proposal["value"])
        n = len(self.class_names)
        low = -1 if proposal["trait"].name == "versus" else 0
        if n and not low <= v < n:
            raise traitlets.TraitError(f"{proposal['trait'].name} must be a class index in [{low}, {n})")
        return v

    @traitlets.validate("layer")
    def _v_layer(self, proposal: Any) -> int:
        v = int(proposal["value"])
        if self.n_layers and not 0 <= v < self.n_layers:
            raise traitlets.TraitError(f"layer must be in [0, {self.n_layers})")
        return v

    @traitlets.validate("head")
    def _v_head(self, proposal: Any) -> int:
        v = int(proposal["value"])
        if self.n_heads and not 0 <= v < self.n_heads:
            raise traitlets.TraitError(f"head must be in [0, {self.n_heads})")
        return v

    @traitlets.observe("head")
    def _on_head(self, change: Any) -> None:
        if not self._is_quiet and self.n_heads:
            self.part = "head"  # a head set from Python (or the view) is what is selected

    @traitlets.observe("target", "versus")
    def _on_target(self, change: Any) -> None:
        """A class without position maps: add them (this needs the kernel; a saved page says so)."""
        if self._is_quiet or self._model is None or position_split_refusal(self._model, self._heads) is not None:
            return
        wanted = [c for c in (self.target, self.versus) if c >= 0 and c not in self.position_class_ids]
        if not wanted:
            return
        self.status = "computing the position maps…"
        try:
            self._result = self._recompute_positions(list(self.position_class_ids) + wanted)
        except Exception as err:  # noqa: BLE001  (shown in the view; the heatmap does not need the maps)
            self.status = f"could not compute the position maps: {err}"
            return
        self._set_quietly({**position_state(self._result), "status": ""})

    def _recompute_positions(self, classes: list[int]) -> DirectLogitAttribution:
        from ..analysis.logit_attribution import direct_logit_attribution

        assert self._model is not None
        prompts = list(self.prompts) if self.prompts else None
        return direct_logit_attribution(self._model, [self._image], prompts=prompts, heads=self._heads,
                                        by_position=True, position_classes=classes)

    @traitlets.observe("prompts")
    def _on_prompts(self, change: Any) -> None:
        if self._is_quiet or list(change["old"] or []) == list(change["new"] or []):
            return
        if self._model is None or not needs_prompts(self._model):
            self._set_quietly({"prompts": list(change["old"]), "status": "prompts can only be edited on a CLIP "
                               "attribution built with pw.LogitAttribution(model, image, prompts=...)"})
            return
        prompts = [str(p).strip() for p in change["new"]]
        if not prompts or any(not p for p in prompts):
            self._set_quietly({"prompts": list(change["old"]), "status": "every prompt needs some text"})
            return
        self.status = "recomputing…"
        target = self.target if self.target < len(prompts) else 0
        versus = self.versus if self.versus < len(prompts) and self.versus != target else -1
        try:
            state = self._compute(prompts, [target, versus])
        except Exception as err:  # noqa: BLE001  (shown in the view, the old attribution stays)
            self._set_quietly({"prompts": list(change["old"]), "status": f"could not recompute: {err}"})
            return
        self._set_quietly({"status": "", **state, "target": target, "versus": versus})

    # ------------------------------------------------------------------------------------------
    def _saved_state(self, state: dict[str, Any]) -> dict[str, Any]:
        """A saved page has no kernel: its prompts are read-only and say so."""
        state = dict(state, prompts_editable=False, status="")
        if state.get("prompts"):
            state["prompt_note"] = "read-only: this saved page has no kernel to recompute"
        return state

    # ------------------------------------------------------------------------------------------
    # what the view draws, for tests and users
    def values(self, target: int | None = None, versus: int | None = None) -> np.ndarray:
        """Each component's contribution ``[component]`` (labels in ``labels``) to ``target`` (minus
        ``versus``), default the selected ones, in logits: the heatmap's numbers."""
        v = decode_array(self.component_values)
        if v is None:
            raise ValueError("this widget holds no attribution")
        t = self.target if target is None else int(target)
        s = self.versus if versus is None else int(versus)
        return v[:, t] - (v[:, s] if s >= 0 else 0.0)

    def logit(self) -> float:
        """The target's actual score (minus the second class's), which :meth:`values` sums to."""
        scores = decode_array(self.class_scores)
        assert scores is not None
        return float(scores[self.target] - (scores[self.versus] if self.versus >= 0 else 0.0))

    def position_map(self, label: str, target: int | None = None) -> np.ndarray | None:
        """Where component ``label``'s contribution to class ``target`` comes from, ``[token]``, or ``None``
        when the widget holds no map for that class."""
        values = decode_array(self.position_values)
        t = self.target if target is None else int(target)
        if values is None or t not in self.position_class_ids:
            return None
        return values[self.position_class_ids.index(t), self.labels.index(label)]

    @property
    def result(self) -> Any:
        """The :class:`~prisma_widgets.analysis.DirectLogitAttribution` shown (``None`` if there is none)."""
        return self._result
