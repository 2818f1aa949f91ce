"""The shared widget foundation: codec, quantisation, safe inlining, standalone HTML."""

from __future__ import annotations

import base64
import hashlib
import json
import re

import numpy as np
import pytest

from prisma_widgets.widgets import _base
from prisma_widgets.widgets._base import (
    decode_array,
    dequantize_rows,
    encode_array,
    json_for_script,
    quantize_rows,
    script_safe_js,
)

HOSTILE = [
    "</script><script>window.__pwned=1</script>",
    "<img src=x onerror=window.__pwned=1>",
    "<!--<script>",
    "\u2028\u2029 & \"quotes\" 'single' `tick` ${x}",
]


@pytest.mark.parametrize("dtype", _base.SUPPORTED_DTYPES)
def test_codec_round_trip_every_dtype(dtype):
    rng = np.random.default_rng(0)
    a = (rng.standard_normal((3, 4, 5)) * 100).astype(dtype)
    enc = encode_array(a)
    assert isinstance(enc["view"], memoryview)
    assert enc["dtype"] == dtype and enc["shape"] == [3, 4, 5]
    assert enc["view"].nbytes == a.nbytes
    np.testing.assert_array_equal(decode_array(enc), a)
    # bytes, bytearray and base64 text decode the same
    for view in (bytes(enc["view"]), bytearray(enc["view"]), base64.b64encode(enc["view"]).decode()):
        np.testing.assert_array_equal(decode_array({**enc, "view": view}), a)


def test_codec_non_contiguous_big_endian_torch_and_bool():
    import torch

    a = np.arange(24, dtype=">f4").reshape(4, 6)[:, ::2]  # big-endian, strided
    enc = encode_array(a)
    assert enc["dtype"] == "float32"
    np.testing.assert_array_equal(decode_array(enc), a.astype(np.float32))
    assert np.frombuffer(enc["view"], "<f4")[1] == 2.0  # little-endian on the wire
    t = torch.arange(6, dtype=torch.float32).reshape(2, 3).t()
    np.testing.assert_array_equal(decode_array(encode_array(t)), t.numpy())
    assert decode_array(encode_array(torch.ones(2, dtype=torch.bfloat16)))[0] == 1.0
    b = encode_array(np.array([True, False]))
    assert b["dtype"] == "uint8"
    with pytest.raises(TypeError, match="cannot be sent"):
        encode_array(np.zeros(2, np.complex64))
    assert decode_array({}) is None


def test_quantize_rows_bound():
    rng = np.random.default_rng(1)
    x = rng.dirichlet(np.ones(197) * 0.3, size=(4, 197)).astype(np.float32)  # rows sum to 1
    x[0, 0] = 0.0  # an all-zero row
    q, s = quantize_rows(x)
    assert q.dtype == np.uint8 and s.dtype == np.float32 and s.shape == x.shape[:-1]
    err = np.abs(dequantize_rows(q, s) - x)
    bound = x.max(-1, keepdims=True) / 510 * (1 + 1e-6) + 1e-12
    assert (err <= bound).all(), float((err - bound).max())
    assert (q.max(-1)[x.max(-1) > 0] == 255).all()  # each row uses the full range
    assert (q[0, 0] == 0).all() and s[0, 0] == 0


@pytest.mark.parametrize("text", HOSTILE)
def test_json_for_script_cannot_break_out(text):
    out = json_for_script({"label": text, "list": [text]})
    low = out.lower()
    assert "<" not in out and ">" not in out and "&" not in out
    assert "</script" not in low and "<!--" not in low
    assert "\u2028" not in out and "\u2029" not in out
    assert json.loads(out) == {"label": text, "list": [text]}


def test_script_safe_js():
    assert script_safe_js('var a="</script>";var b="</SCRIPT >"') == 'var a="<\\/script>";var b="<\\/SCRIPT >"'
    with pytest.raises(ValueError):
        script_safe_js('var a="<!--"')
    with pytest.raises(ValueError):
        script_safe_js('var a="<script>"')


def test_built_bundles_inline_safely():
    widgets = sorted(p.stem for p in (_base.STATIC_DIR.parent.parent / "js" / "src").glob("*.ts"))
    assert {"attention_grid", "logit_lens", "patching_heatmap", "feature_gallery"} <= set(widgets)
    for name in [f"{w}.js" for w in widgets] + [f"{w}.standalone.js" for w in widgets]:
        path = _base.STATIC_DIR / name
        if not path.exists():
            pytest.fail(f"{path} missing: run `cd js && npm ci && npm run build`")
        code = path.read_text()
        script_safe_js(code)  # raises if it could not be inlined
        assert not re.search(r"https?://(?!www\.w3\.org)", code), "bundles must not reference the network"


def _page(tmp_path, **kw):
    from prisma_widgets.widgets.attention_grid import AttentionGrid

    rng = np.random.default_rng(0)
    p = rng.random((2, 2, 10, 10)).astype(np.float32)
    p /= p.sum(-1, keepdims=True)
    w = AttentionGrid.from_patterns(p, np.zeros((24, 24, 3), np.uint8), grid=(3, 3), **kw)
    path = w.save_html(tmp_path / "w.html")
    return w, path.read_text(encoding="utf-8")


def test_save_html_is_self_contained_and_escaped(tmp_path):
    hostile_labels = [HOSTILE[i % len(HOSTILE)] + str(i) for i in range(10)]
    w, page = _page(
        tmp_path,
        token_labels=hostile_labels,
        title=HOSTILE[0],
        image_labels=[HOSTILE[1]],
    )
    low = page.lower()
    # exactly our three scripts; none of the hostile markup survives as markup
    assert low.count("<script") == 3
    assert low.count("</script>") == 3
    assert "<img" not in low
    outside_state = re.sub(r'<script type="application/json" class="pw-state">.*?</script>', "", page, flags=re.S)
    assert "onerror" not in outside_state.lower()  # only as escaped text inside the JSON
    assert "<!--" not in low
    # no network: no src/href attributes, no URLs except the SVG namespace string
    assert not re.search(r"\s(src|href)\s*=", outside_state)
    assert not re.search(r"https?://(?!www\.w3\.org)", outside_state)
    # the state round-trips: hostile labels come back exactly as text
    blob = re.search(r'<script type="application/json" class="pw-state">(.*?)</script>', page, re.S).group(1)
    payload = json.loads(blob)
    assert payload["widget"] == "attention_grid"
    assert payload["state"]["token_labels"] == hostile_labels
    assert payload["state"]["title"] == HOSTILE[0]
    assert "_esm" not in payload["state"] and "layout" not in payload["state"]
    # binary buffers travel as base64 (deflated when that helps) and decode to the same bytes
    import zlib

    for buf in payload["buffers"]:
        raw = base64.b64decode(buf["data"])
        if buf["encoding"] == "deflate":
            raw = zlib.decompress(raw)
        node = w.get_state()
        for key in buf["path"][:-1]:
            node = node[key]
        assert raw == bytes(node[buf["path"][-1]])
    # the CSP admits exactly the two inline scripts
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    hashes = set(re.findall(r"'sha256-([^']+)'", csp))
    scripts = re.findall(r"<script>(.*?)</script>", page, re.S)
    assert len(scripts) == 2
    assert {base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() for s in scripts} == hashes
    assert "default-src 'none'" in csp


def test_save_html_uncompressed(tmp_path):
    w, _ = _page(tmp_path)
    page = w.save_html(tmp_path / "raw.html", compress=False).read_text()
    assert '"encoding":"deflate"' not in page


def test_theme_and_colormap_validation():
    import traitlets

    from prisma_widgets.widgets.attention_grid import AttentionGrid

    p = np.full((1, 1, 5, 5), 0.2, np.float32)
    w = AttentionGrid.from_patterns(p, grid=(2, 2), theme="dark", colormap="Magma")
    assert w.theme == "dark" and w.colormap == "magma"
    with pytest.raises(traitlets.TraitError):
        w.theme = "sepia"
    with pytest.raises(traitlets.TraitError):
        w.colormap = "jet"


def test_save_html_names_a_non_finite_value_and_how_to_fix_it(tmp_path):
    w, _ = _page(tmp_path)
    w.opacity = float("nan")
    with pytest.raises(ValueError, match=r"AttentionGrid\.opacity is nan.*finite number"):
        w.save_html(tmp_path / "nan.html")
    assert _base.first_non_finite({"a": [1.0, {"b": float("-inf")}]}) == ("a[1]['b']", float("-inf"))
    assert _base.first_non_finite({"a": [1.0, 2], "b": "nan"}) is None


def test_an_unknown_option_is_refused_with_the_widget_named(tmp_path):
    from prisma_widgets.widgets.attention_grid import AttentionGrid

    p = np.full((1, 1, 5, 5), 0.2, np.float32)
    with pytest.raises(TypeError, match=r"AttentionGrid has no option\(s\) \['colourmap'\]"):
        AttentionGrid.from_patterns(p, np.zeros((8, 8, 3), np.uint8), grid=(2, 2), colourmap="magma")
    with pytest.raises(TypeError, match=r"has no option\(s\) \['_esm'\]"):
        AttentionGrid.from_patterns(p, np.zeros((8, 8, 3), np.uint8), grid=(2, 2), _esm="")


def test_every_widget_built_from_a_model_names_it_for_the_png_caption():
    """A PNG export's caption starts with ``model_name``: each widget built from a model sets it."""
    import torch

    import prisma_widgets as pw
    from prisma_widgets.widgets.feature_gallery import FeatureGallery
    from prisma_widgets.widgets.logit_attribution import LogitAttribution
    from prisma_widgets.widgets.patching_heatmap import PatchingHeatmap
    from prisma_widgets.zoo import shape_pair

    model = pw.load("mouse-vit")
    clean, corrupted, _, _ = shape_pair(seed=0)
    sae = pw.SAE(d_in=128, d_sae=16, k=4, hook="blocks.3.hook_resid_post", generator=torch.Generator().manual_seed(0))
    widgets = [
        pw.AttentionGrid(model, [clean]),
        pw.LogitLens(model, clean),
        PatchingHeatmap(model, clean, corrupted),
        LogitAttribution(model, clean),
        FeatureGallery(model, sae, [clean, corrupted]),
    ]
    assert [w.model_name for w in widgets] == [model.name] * len(widgets) and model.name == "mouse-vit"
