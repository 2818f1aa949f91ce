"""``FeatureGallery``: browse a sparse autoencoder's features over a set of images.

A sortable, filterable list of feature cards (firing frequency, mean activation, and the class its decoder
direction pushes up most; search by feature index or by class / prompt name), sorted by default by that push
(the largest direct logit effect), the order a researcher starts from. Each card shows the feature's top images with its
patch activations over them. Click a card (or set ``feature`` from Python) for the detail view: top images,
quantile groups of a random sample of the images where it fires, the log-density histogram of every
feature with this one marked, its activation histogram and logit-effect histogram, its top and bottom class
effects (never the same class in both), and steering: zero it, double it or clamp it to a value on its top
images and see the class (or prompt) probabilities move, computed in the kernel (a saved page says so). Click a
patch of any image: the features active there, strongest first (kernel round trip; precomputed in a saved page).

What travels (Python computes every number; the front end only draws and sorts):

* the index, one entry per listed feature: ``frequency``, ``mean_activation``, ``max_activation``
  (float32), ``effect_strength`` (the largest class effect, float32) and ``top_class`` (the 3 classes its
  decoder direction raises most, int32; none for a dead feature);
* only what is on screen: the cards of the page the view shows (the view reports its page in
  ``visible``) and the detail of ``feature``. Patch maps are uint8 with one float32 scale per map
  (error at most ``max(map) / 510``); images are uint8 thumbnails, each sent once per update;
* ``save_html(path, features=[...])`` writes the index, cards and details of the chosen features only (default:
  the page on screen and the selected feature), plus the active features of every patch of every image it holds.
* over clips (a video model): see :mod:`prisma_widgets.widgets.gallery_frames`.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from typing import Any, TYPE_CHECKING

import numpy as np
import traitlets

from ._base import (
    ArrayTrait,
    write_standalone_html,
    PrismaWidget,
    bundle_css,
    bundle_esm,
    decode_array,
    encode_array,
)
from ._layout import as_uint8_image
from .gallery_detail import (BINS, activation_histogram, active_features, check_steer_request, density_histogram,
                             effect_histogram, list_order, push, quantized_maps, steer_probabilities, thumbnail)
from .gallery_frames import GalleryFrameTraits, clip_frames, frame_content

if TYPE_CHECKING:
    from ..hooked.model import HookedViT

SORTS = ("push", "frequency", "mean", "max", "index")
NORMALIZATIONS = ("feature", "image")

#: images per card (the detail view shows all ``top_k``)
CARD_IMAGES = 4
#: quantile groups in the detail view
QUANTILE_GROUPS = 4
#: classes at each end of the class-effect list
N_EFFECTS = 5
#: features listed for a clicked patch
PATCH_FEATURES = 8
#: largest thumbnail side sent to the view, in pixels
THUMB_PIXELS = 96


class FeatureGallery(GalleryFrameTraits, PrismaWidget):
    """A sparse autoencoder's features over a set of images: cards, a detail view, patch look-up.

    Args:
        model: a :class:`prisma_widgets.HookedViT`.
        sae: a :class:`prisma_widgets.SAE` over ``hook``'s activations.
        images: the images (list, array ``[n, H, W, 3]``, folder, dataset), as for
            :func:`prisma_widgets.feature_stats`.
        hook: default the SAE's hook. ``tokens``, ``top_k``, ``n_samples``, ``prompts``, ``batch_size``:
            passed to :func:`~prisma_widgets.sae.features.feature_stats`.
        stats: a precomputed :class:`~prisma_widgets.sae.features.FeatureStats` (then nothing is
            recomputed; see also :meth:`from_stats`).
        image_labels: one text per image (its class, a file name), shown under the thumbnails.
        **traits: initial values of the synced traits below.

    Synced traits (both ways):
        ``feature``: the feature in the detail view (``-1``: none). ``sort_by``: ``"push"`` (the largest
        class effect; the default when there are class effects), ``"frequency"``, ``"mean"``, ``"max"`` or
        ``"index"``; ``descending``; ``query`` (a feature index, or text matched
        against the names of each feature's top classes); ``hide_dead``; ``page``, ``page_size``;
        ``normalization``: colour range per ``"feature"`` (its largest activation) or per ``"image"``.

    Example:
        >>> import prisma_widgets as pw
        >>> from prisma_widgets import zoo
        >>> model = pw.load("mouse-vit")
        >>> images, labels = zoo.shapes(24, seed=0)
        >>> sae = pw.SAE(d_in=128, d_sae=32, k=4, hook="blocks.3.hook_resid_post")
        >>> gallery = pw.FeatureGallery(model, sae, images, feature=3)
        >>> gallery.detail_features, len(gallery.card_features)
        ([3], 12)
    """

    _widget_name = "feature_gallery"
    _esm = bundle_esm("feature_gallery")
    _css = bundle_css("feature_gallery")

    # the index: one entry per listed feature
    feature_ids = ArrayTrait()  # int32 [n]
    frequency = ArrayTrait()  # float32 [n]
    mean_activation = ArrayTrait()  # float32 [n]
    max_activation = ArrayTrait()  # float32 [n]
    effect_strength = ArrayTrait()  # float32 [n]: the largest class effect ("push")
    top_class = ArrayTrait()  # int32 [n, 3] (-1: none; dead features have none)
    class_names = traitlets.List(traitlets.Unicode()).tag(sync=True)
    density_counts = traitlets.List(traitlets.Int()).tag(sync=True)
    density_edges = traitlets.List(traitlets.Float()).tag(sync=True)
    d_sae = traitlets.Int(0).tag(sync=True)
    n_images = traitlets.Int(0).tag(sync=True)
    hook = traitlets.Unicode("").tag(sync=True)
    readout_note = traitlets.Unicode("").tag(sync=True)
    grid = traitlets.List(traitlets.Int(), default_value=[1, 1]).tag(sync=True)
    n_prefix_tokens = traitlets.Int(0).tag(sync=True)
    # the cards on screen
    card_features = traitlets.List(traitlets.Int()).tag(sync=True)
    card_images = ArrayTrait()  # int32 [n, CARD_IMAGES]: positions in `images` (-1: none)
    card_values = ArrayTrait()  # float32 [n, CARD_IMAGES]
    card_maps = ArrayTrait()  # uint8 [n, CARD_IMAGES, T]
    card_map_scale = ArrayTrait()  # float32 [n, CARD_IMAGES]
    # the detail of `feature` (of every saved feature in a saved page)
    detail_features = traitlets.List(traitlets.Int()).tag(sync=True)
    detail_images = ArrayTrait()  # int32 [n, K]
    detail_values = ArrayTrait()  # float32 [n, K]
    detail_maps = ArrayTrait()  # uint8 [n, K, T]
    detail_map_scale = ArrayTrait()  # float32 [n, K]
    quantile_images = ArrayTrait()  # int32 [n, Q, S]
    quantile_values = ArrayTrait()  # float32 [n, Q, S]
    quantile_maps = ArrayTrait()  # uint8 [n, Q, S, T]
    quantile_map_scale = ArrayTrait()  # float32 [n, Q, S]
    effect_classes = ArrayTrait()  # int32 [n, 2, E]: row 0 top, row 1 bottom
    effect_values = ArrayTrait()  # float32 [n, 2, E]
    act_hist_counts = ArrayTrait()  # int32 [n, BINS]: activations over its sampled images' tokens
    act_hist_edges = ArrayTrait()  # float32 [n, BINS + 1]
    effect_hist_counts = ArrayTrait()  # int32 [n, BINS]: its effect on every class logit
    effect_hist_edges = ArrayTrait()  # float32 [n, BINS + 1]
    # the images those refer to
    images = ArrayTrait()  # uint8 [M, h, w, 3]
    image_ids = traitlets.List(traitlets.Int()).tag(sync=True)
    image_labels = traitlets.List(traitlets.Unicode()).tag(sync=True)
    # patch look-up
    live = traitlets.Bool(False).tag(sync=True)
    patch_query = traitlets.List(traitlets.Int()).tag(sync=True)  # [image id, token] from the view
    patch_result = traitlets.Dict().tag(sync=True)  # {"image", "token", "features", "values"}
    patch_table_images = traitlets.List(traitlets.Int()).tag(sync=True)
    patch_table_features = ArrayTrait()  # int32 [m, T, P] (-1: none)
    patch_table_values = ArrayTrait()  # float32 [m, T, P]
    # steering (needs the kernel): the view asks, Python answers
    can_steer = traitlets.Bool(False).tag(sync=True)
    steer_request = traitlets.Dict().tag(sync=True)  # {"feature", "op": zero | scale | clamp, "value"}
    steer_result = traitlets.Dict().tag(sync=True)  # {"feature", "op", "value", "classes", "before", "after"}
    # selection and list state, both ways
    feature = traitlets.Int(-1).tag(sync=True)
    visible = traitlets.List(traitlets.Int()).tag(sync=True)
    sort_by = traitlets.Enum(SORTS, default_value="push").tag(sync=True)
    descending = traitlets.Bool(True).tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)
    hide_dead = traitlets.Bool(True).tag(sync=True)
    page = traitlets.Int(0, min=0).tag(sync=True)
    page_size = traitlets.Int(12).tag(sync=True)
    normalization = traitlets.Enum(NORMALIZATIONS, default_value="feature").tag(sync=True)
    status = traitlets.Unicode("").tag(sync=True)
    # look
    thumb_size = traitlets.Int(72, min=16, max=512).tag(sync=True)
    opacity = traitlets.Float(0.7, min=0.0, max=1.0).tag(sync=True)

    def __init__(
        self,
        model: HookedViT,
        sae: Any,
        images: Any,
        hook: str | None = None,
        *,
        stats: Any = None,
        tokens: str = "patches",
        top_k: int = 8,
        n_samples: int = 16,
        prompts: Sequence[str] | None = None,
        batch_size: int = 64,
        image_labels: Sequence[str] | None = None,
        **traits: Any,
    ) -> None:
        from prisma_widgets.sae.source import ImageSource

        self._init_private()
        self._model, self._sae = model, sae
        self._source = None if images is None else (images if isinstance(images, ImageSource) else ImageSource(images))
        self._labels = [str(x) for x in image_labels] if image_labels is not None else None
        if stats is None:
            if model is None or sae is None:
                raise ValueError("pass model, sae and images, or a precomputed stats=FeatureStats")
            from prisma_widgets.sae.features import feature_stats

            stats = feature_stats(model, sae, self._source, hook, tokens=tokens, top_k=top_k, n_samples=n_samples,
                                  prompts=prompts, batch_size=batch_size)
        if self._source is None:
            raise ValueError("pass the images the statistics were computed on (they are drawn, not stored in stats)")
        if len(self._source) != stats.n_images:
            raise ValueError(f"{len(self._source)} images for statistics over {stats.n_images} images")
        if self._labels is not None and len(self._labels) != stats.n_images:
            raise ValueError(f"{len(self._labels)} image labels for {stats.n_images} images")
        self._stats = stats
        self._can_look_up = model is not None and sae is not None and self._frame_order() is None  # clips: frame-major
        page_size = int(traits.pop("page_size", 12))
        feature = int(traits.get("feature", -1))
        if stats.class_effects is None:  # nothing to push: the frequency order
            traits.setdefault("sort_by", "frequency")
        order = list_order(stats, traits.get("sort_by", "push"), bool(traits.get("descending", True)),
                           bool(traits.get("hide_dead", True)))
        visible = order[:page_size]
        self._init_traits({
            **self._index_state(np.arange(stats.d_sae)),
            "live": self._can_look_up,
            "model_name": str(model.name or "") if model is not None else "",
            "can_steer": (self._can_look_up and stats.class_effects is not None
                          and getattr(sae.cfg, "kind", "sae") == "sae"),  # transcoders write elsewhere
            "page_size": page_size,
            **self._content_state(visible, [feature] if feature >= 0 else []),
            "visible": visible,
            "feature": feature,
        })
        self._apply_options(traits)

    def _init_private(self) -> None:
        self._model: HookedViT | None = None
        self._sae: Any = None
        self._source: Any = None
        self._labels: list[str] | None = None
        self._thumbs: dict[int, np.ndarray] = {}
        self._stats: Any = None
        self._can_look_up = False

    @classmethod
    def from_stats(
        cls,
        stats: Any,
        images: Any,
        *,
        model: HookedViT | None = None,
        sae: Any = None,
        image_labels: Sequence[str] | None = None,
        **traits: Any,
    ) -> FeatureGallery:
        """A gallery of statistics you computed (:func:`prisma_widgets.feature_stats` or
        :meth:`FeatureStats.load`) over ``images``. With ``model`` and ``sae`` a clicked patch lists its
        active features; without them the gallery shows everything else."""
        return cls(model, sae, images, stats=stats, image_labels=image_labels, **traits)

    # ------------------------------------------------------------------------------------------
    def _index_state(self, ids: np.ndarray) -> dict[str, Any]:
        st = self._stats
        top = np.full((len(ids), 3), -1, np.int32)
        if st.class_effects is not None:
            k = min(3, st.class_effects.shape[1])
            top[:, :k] = np.argsort(-st.class_effects[ids], axis=1, kind="stable")[:, :k]
            top[st.frequency[ids] <= 0] = -1  # a dead feature detects nothing: no class on its card
        counts, edges = density_histogram(st.frequency)
        names = [str(c) for c in st.class_names] if st.class_names else []
        return {
            "feature_ids": encode_array(ids, "int32"),
            "frequency": encode_array(st.frequency[ids], "float32"),
            "mean_activation": encode_array(st.mean_activation[ids], "float32"),
            "max_activation": encode_array(st.max_activation[ids], "float32"),
            "effect_strength": encode_array(push(st)[ids], "float32"),
            "top_class": encode_array(top),
            "class_names": names,
            "density_counts": counts,
            "density_edges": edges,
            "d_sae": st.d_sae,
            "n_images": st.n_images,
            "hook": st.hook,
            "readout_note": st.readout_note,
            "grid": [int(st.grid[0]), int(st.grid[1])],
            "n_prefix_tokens": int(st.n_prefix_tokens),
        }

    def _thumb(self, i: int) -> np.ndarray:
        if i not in self._thumbs:
            item = self._source.item(i)
            if self._model is not None:
                img = self._model.display_images([item])[0]
            else:
                img = as_uint8_image(item)
            self._thumbs[i] = thumbnail(img, THUMB_PIXELS)
        return self._thumbs[i]

    def _content_state(self, cards: Sequence[int], details: Sequence[int]) -> dict[str, Any]:
        """Cards, details and the image pool they refer to."""
        st = self._stats
        cards = [int(f) for f in cards if 0 <= int(f) < st.d_sae]
        details = [int(f) for f in details if 0 <= int(f) < st.d_sae]
        T = st.tokens_per_image
        groups = [st.quantile_groups(f, QUANTILE_GROUPS) for f in details]
        per_group = max([len(g["images"]) for gs in groups for g in gs] or [1])
        needed = set(st.top_images[cards, :CARD_IMAGES].ravel().tolist()) | set(st.top_images[details].ravel().tolist())
        for gs in groups:
            for g in gs:
                needed.update(g["images"])
        needed.discard(-1)
        pool = sorted(needed)
        at = {img: p for p, img in enumerate(pool)}
        where = np.vectorize(lambda i: at.get(int(i), -1), otypes=[np.int32])
        empty_i = np.zeros((0,), np.int32)

        def pos(a: np.ndarray) -> np.ndarray:
            return where(a) if a.size else empty_i.reshape(a.shape)

        q_img = np.full((len(details), QUANTILE_GROUPS, per_group), -1, np.int32)
        q_val = np.zeros((len(details), QUANTILE_GROUPS, per_group), np.float32)
        q_map = np.zeros((len(details), QUANTILE_GROUPS, per_group, T), np.float32)
        for n, gs in enumerate(groups):
            for g, grp in enumerate(gs):
                m = len(grp["images"])
                q_img[n, g, :m] = pos(np.asarray(grp["images"]))
                q_val[n, g, :m] = grp["values"]
                q_map[n, g, :m] = grp["maps"]
        eff_c = np.full((len(details), 2, N_EFFECTS), -1, np.int32)
        eff_v = np.zeros((len(details), 2, N_EFFECTS), np.float32)
        for n, f in enumerate(details):
            top, top_v, bottom, bottom_v = st.class_effect_extremes(f, N_EFFECTS)
            eff_c[n, 0, : len(top)], eff_v[n, 0, : len(top)] = top, top_v
            eff_c[n, 1, : len(bottom)], eff_v[n, 1, : len(bottom)] = bottom, bottom_v
        hists = np.zeros((2, len(details), BINS), np.int32), np.zeros((2, len(details), BINS + 1), np.float32)
        for n, f in enumerate(details):
            for h, (counts, edges) in enumerate((activation_histogram(st, f), effect_histogram(st, f))):
                hists[0][h, n, : len(counts)], hists[1][h, n, : len(edges)] = counts, edges
        clips = clip_frames(st) > 1  # a clip: the frames where each feature fires (gallery_frames.py)
        pixels = np.stack([self._thumb(i) for i in pool]) if pool and not clips else np.zeros((0, 1, 1, 3), np.uint8)
        card_maps, card_scale = quantized_maps(st.top_maps[cards, :CARD_IMAGES])
        det_maps, det_scale = quantized_maps(st.top_maps[details])
        q_maps, q_scale = quantized_maps(q_map)
        state = {
            "card_features": cards,
            "card_images": encode_array(pos(st.top_images[cards, :CARD_IMAGES]), "int32"),
            "card_values": encode_array(st.top_values[cards, :CARD_IMAGES], "float32"),
            "card_maps": card_maps,
            "card_map_scale": card_scale,
            "detail_features": details,
            "detail_images": encode_array(pos(st.top_images[details]), "int32"),
            "detail_values": encode_array(st.top_values[details], "float32"),
            "detail_maps": det_maps,
            "detail_map_scale": det_scale,
            "quantile_images": encode_array(q_img),
            "quantile_values": encode_array(q_val),
            "quantile_maps": q_maps,
            "quantile_map_scale": q_scale,
            "effect_classes": encode_array(eff_c),
            "effect_values": encode_array(eff_v),
            "act_hist_counts": encode_array(hists[0][0]),
            "act_hist_edges": encode_array(hists[1][0]),
            "effect_hist_counts": encode_array(hists[0][1]),
            "effect_hist_edges": encode_array(hists[1][1]),
            "images": encode_array(pixels),
            "image_ids": pool,
            "image_labels": [self._labels[i] for i in pool] if self._labels is not None else [],
        }
        if clips:
            state.update(frame_content(st, cards, details, groups, self._clip_frames, self._labels, CARD_IMAGES,
                                       QUANTILE_GROUPS, self._frame_order()))
        return state

    def _refresh(self, visible: Sequence[int] | None = None, feature: int | None = None) -> None:
        visible = list(self.visible) if visible is None else [int(v) for v in visible]
        feature = self.feature if feature is None else int(feature)
        state = self._content_state(visible, [feature] if feature >= 0 else [])
        self._set_quietly({**state, "visible": visible, "feature": feature})

    # ------------------------------------------------------------------------------------------
    @traitlets.validate("feature")
    def _v_feature(self, proposal: Any) -> int:
        v = int(proposal["value"])
        if self.d_sae and not -1 <= v < self.d_sae:
            raise traitlets.TraitError(f"feature must be -1 or in [0, {self.d_sae})")
        return v

    @traitlets.validate("page_size")
    def _v_page_size(self, proposal: Any) -> int:
        v = int(proposal["value"])
        if not 1 <= v <= 200:
            raise traitlets.TraitError(f"page_size must be in [1, 200], not {v}")
        return v

    @traitlets.observe("feature")
    def _on_feature(self, change: Any) -> None:
        if self._is_quiet or self._stats is None or [int(change["new"])] == list(self.detail_features):
            return
        if change["new"] < 0 and not self.detail_features:
            return
        self._refresh(feature=int(change["new"]))

    @traitlets.observe("visible")
    def _on_visible(self, change: Any) -> None:
        if not self._is_quiet and self._stats is not None and list(change["new"]) != list(self.card_features):
            self._refresh(visible=list(change["new"]))

    @traitlets.observe("patch_query")
    def _on_patch_query(self, change: Any) -> None:
        q = list(change["new"] or [])
        if self._is_quiet or len(q) != 2 or not self._can_look_up:
            return
        image, token = int(q[0]), int(q[1])
        try:
            feats, vals = self.active_features([image])
            f, v = feats[0, token], vals[0, token]
            keep = f >= 0
            self.patch_result = {"image": image, "token": token, "features": f[keep].tolist(),
                                 "values": [float(x) for x in v[keep]]}
        except Exception as err:  # noqa: BLE001  (shown in the view)
            self.status = f"patch look-up failed: {err}"

    @traitlets.observe("steer_request")
    def _on_steer_request(self, change: Any) -> None:
        if self._is_quiet or not change["new"]:
            return
        try:
            if not self.can_steer:
                raise ValueError("steering needs the model and the SAE, and a model with classes or prompts")
            self.steer_result = self.steer(*check_steer_request(change["new"], self._stats.d_sae))
        except Exception as err:  # noqa: BLE001  (shown in the view)
            self.steer_result = {"error": f"steering failed: {err}"}

    def steer(self, feature: int, op: str = "zero", value: float = 0.0) -> dict[str, Any]:
        """Class (or prompt) probabilities, averaged over ``feature``'s top images, before and after editing it
        (``"zero"``, ``"scale"`` by ``value`` or ``"clamp"`` to ``value`` on every token the SAE reads, the
        reconstruction error kept): ``{"classes", "before", "after", ...}``, the classes that moved most first."""
        feature, op, value = check_steer_request({"feature": feature, "op": op, "value": value}, self._stats.d_sae)
        if not self._can_look_up:
            raise ValueError("steering needs the model and the SAE: FeatureGallery(model, sae, images, ...)")
        ids = [int(i) for i in self._stats.top_images[feature] if i >= 0]
        if not ids:
            raise ValueError(f"feature {feature} fires on none of the images: nothing to steer")
        result = steer_probabilities(self._model, self._sae, self._stats, [self._source.item(i) for i in ids],
                                     feature, op, value, self._stats.class_names)
        return {**result, "names": [self.class_names[c] if c < len(self.class_names) else f"class {c}"
                                    for c in result["classes"]]}

    # ------------------------------------------------------------------------------------------
    def active_features(self, image_ids: Sequence[int], n: int = PATCH_FEATURES) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` strongest features at every token of each image: ``(ids [m, T, n] int32 (-1: fewer
        fire), activations [m, T, n] float32)``. Needs the model and the SAE."""
        if not self._can_look_up:
            raise ValueError("looking up a patch's features needs the model and the SAE")
        return active_features(self._model, self._sae, self._stats, self._source, image_ids, n)

    def save_html(
        self,
        path: str | pathlib.Path,
        title: str | None = None,
        *,
        features: Sequence[int] | str | None = None,
        compress: bool = True,
    ) -> pathlib.Path:
        """Write the chosen ``features`` (default: the cards on screen and the selected feature; ``"all"``: every
        feature that fires) to one self-contained HTML file: their index entries, cards and details, the images
        they show, and the active features of every patch of those images (when the gallery holds the model
        and SAE). The page says how many of the features it holds."""
        from .gallery_saved import saved_features  # a leaf module

        ids, note = saved_features(self._stats.frequency, self.card_features, self.feature, features)
        bad = [f for f in ids if not 0 <= f < self._stats.d_sae]
        if bad or not ids:
            raise ValueError(f"features to save must be in [0, {self._stats.d_sae}); got {bad or 'none'}")
        state = {**self._index_state(np.asarray(ids)), **self._content_state(ids, ids)}
        if self._can_look_up:
            feats, vals = self.active_features(state["image_ids"])
            state.update(patch_table_images=list(state["image_ids"]), patch_table_features=encode_array(feats),
                         patch_table_values=encode_array(vals))
        keep = ("sort_by", "descending", "query", "hide_dead", "page_size", "normalization", "thumb_size",
                "opacity", "theme", "colormap", "title")
        state.update({k: getattr(self, k) for k in keep})
        state.update(feature=self.feature if self.feature in ids else ids[0], page=0, visible=ids[: self.page_size],
                     live=False, can_steer=False, steer_result={}, status="")
        page = FeatureGallery._from_state(state)  # complete state, no statistics: nothing recomputes
        page.status = note
        try:
            return write_standalone_html(page, self._widget_name, path, title=title, compress=compress)
        finally:
            page.close()

    # ------------------------------------------------------------------------------------------
    # what the view reads, decoded (for tests and users)
    @property
    def stats(self) -> Any:
        """The :class:`~prisma_widgets.sae.features.FeatureStats` shown."""
        return self._stats

    def card_map_values(self) -> np.ndarray:
        """The cards' patch maps as the view reads them, float32 ``[cards, CARD_IMAGES, T]``."""
        q, s = decode_array(self.card_maps), decode_array(self.card_map_scale)
        return q.astype(np.float32) * s[..., None]

    def detail_map_values(self) -> np.ndarray:
        """The detail's top-image maps as the view reads them, float32 ``[n, top_k, T]``."""
        q, s = decode_array(self.detail_maps), decode_array(self.detail_map_scale)
        return q.astype(np.float32) * s[..., None]
