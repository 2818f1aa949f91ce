"""Splicing SAEs into the forward pass and steering with their features, against hand computations with plain
hooks: the reconstruction replaces the hook's value on the SAE's tokens; with the error kept the output is
bit-identical until a feature is edited; each edit changes the activation by decode(edited) - decode(f)."""

from __future__ import annotations

import pytest
import torch

import prisma_widgets as pw
from tests.conftest import pixels_for

pytestmark = pytest.mark.usefixtures("one_thread")

HOOK = "blocks.0.hook_resid_post"


def _sae(model, arch="topk", tokens="patches", hook=HOOK, seed=0):
    torch.manual_seed(seed)
    sae = pw.SAE(d_in=model.cfg.d_model, d_sae=64, arch=arch, k=6 if arch == "topk" else None, hook=hook, tokens=tokens)
    with torch.no_grad():
        sae.b_enc.normal_(0, 0.1)
        sae.b_dec.normal_(0, 0.1)
    return sae


def _by_hand(model, pixels, hook, fn):
    return model.run_with_hooks(pixels, fwd_hooks=[(hook, fn)])


@pytest.mark.parametrize("tokens", ["patches", "all", "cls"])
def test_the_reconstruction_replaces_the_activation_on_the_sae_tokens(tiny, tokens):
    sae, x = _sae(tiny, tokens=tokens), pixels_for(tiny)
    n_prefix = tiny.cfg.n_prefix_tokens
    span = {"patches": slice(n_prefix, None), "all": slice(None), "cls": slice(0, 1)}[tokens]

    def by_hand(act, hook):
        out = act.clone()
        out[:, span] = sae.decode(sae.encode(act[:, span]))
        return out

    with torch.no_grad():
        want = _by_hand(tiny, x, HOOK, by_hand)
        got = tiny.run_with_saes(x, saes=[sae])
        torch.testing.assert_close(got, want, rtol=0, atol=0)
        assert not torch.equal(got, tiny(x))  # the reconstruction is not the activation
        with tiny.saes([sae]):  # the context form does the same, and is gone afterwards
            torch.testing.assert_close(tiny(x), want, rtol=0, atol=0)
        assert torch.equal(tiny(x), tiny.run_with_hooks(x))


def test_keeping_the_error_leaves_the_output_bit_identical(tiny):
    sae, x = _sae(tiny), pixels_for(tiny)
    with torch.no_grad():
        assert torch.equal(tiny.run_with_saes(x, saes=[sae], keep_error=True), tiny(x))
        with tiny.saes([sae], keep_error=True):
            assert torch.equal(tiny(x), tiny.run_with_hooks(x))


@pytest.mark.parametrize("op,value", [("zero", 0.0), ("scale", 2.0), ("clamp", 3.5), ("add", -1.5)])
@pytest.mark.parametrize("keep_error", [True, False])
def test_feature_edits_against_plain_hooks(tiny, op, value, keep_error):
    sae, x = _sae(tiny), pixels_for(tiny)
    n_prefix = tiny.cfg.n_prefix_tokens
    positions = [n_prefix + 2, n_prefix + 7]
    with torch.no_grad():
        rows = tiny.run_with_cache(x, names_filter=HOOK)[1][HOOK][:, n_prefix:]
        f = sae.encode(rows)
    feature = int(f[:, 2].sum(0).argmax())  # one that fires at the first position

    def by_hand(act, hook):
        p = act[:, n_prefix:]
        f = sae.encode(p)
        g = f.clone()
        for q in positions:
            i = q - n_prefix
            g[:, i, feature] = {"zero": 0.0 * g[:, i, feature], "scale": g[:, i, feature] * value,
                                "clamp": torch.full_like(g[:, i, feature], value), "add": g[:, i, feature] + value}[op]
        new = p + (sae.decode(g) - sae.decode(f)) if keep_error else sae.decode(g)
        out = act.clone()
        out[:, n_prefix:] = new
        return out

    with torch.no_grad():
        want = _by_hand(tiny, x, HOOK, by_hand)
        edit = pw.FeatureEdit(feature, op, value, positions)
        got = tiny.run_with_saes(x, saes=[sae], keep_error=keep_error, edits=[edit])
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)
        assert not torch.allclose(got, tiny(x))
        if keep_error:
            torch.testing.assert_close(pw.steer(tiny, x, sae, feature, op, value, positions), want, rtol=1e-6, atol=1e-6)


def test_adding_a_feature_adds_its_decoder_direction(tiny):
    """With the error kept, "add" moves the activation by exactly value x the decoder row, where asked."""
    sae, x = _sae(tiny, arch="relu"), pixels_for(tiny)
    n_prefix = tiny.cfg.n_prefix_tokens
    seen = {}

    def grab(act, hook):
        seen["act"] = act.clone()

    with torch.no_grad():
        tiny.run_with_hooks(x, fwd_hooks=[(HOOK, grab)])
        before = seen["act"]
        hooks = [(HOOK, grab)]
        with tiny.saes([sae], keep_error=True, edits=[pw.FeatureEdit(5, "add", 2.0, [n_prefix + 3])]):
            tiny.run_with_hooks(x, fwd_hooks=[("blocks.1.hook_resid_pre", grab)])
        after = seen["act"]
        delta = after - before
        torch.testing.assert_close(delta[:, n_prefix + 3], (2.0 * sae.W_dec[5]).expand(2, -1), rtol=1e-5, atol=1e-5)
        others = torch.ones(delta.shape[1], dtype=torch.bool)
        others[n_prefix + 3] = False
        assert torch.equal(delta[:, others], torch.zeros_like(delta[:, others]))
        assert hooks


def test_two_saes_and_edits_by_hook(tiny):
    a, b = _sae(tiny), _sae(tiny, hook="blocks.1.hook_mlp_out", seed=1)
    x = pixels_for(tiny)
    with torch.no_grad():
        plain = tiny(x)
        assert torch.equal(tiny.run_with_saes(x, saes=[a, b], keep_error=True), plain)
        one = tiny.run_with_saes(x, saes=[a, b], keep_error=True, edits=[pw.FeatureEdit(3, "clamp", 5.0, hook=b.cfg.hook)])
        alone = tiny.run_with_saes(x, saes=[b], keep_error=True, edits=[pw.FeatureEdit(3, "clamp", 5.0)])
        torch.testing.assert_close(one, alone, rtol=0, atol=0)
        other = tiny.run_with_saes(x, saes=[("blocks.1.hook_resid_pre", a)], keep_error=True,
                                   edits=[pw.FeatureEdit(3, "clamp", 5.0)])
        assert not torch.equal(other, plain)


def test_bad_splices_are_refused(tiny):
    sae, x = _sae(tiny), pixels_for(tiny)
    with pytest.raises(TypeError, match="saes must be a list"):
        tiny.run_with_saes(x, saes=sae)
    with pytest.raises(TypeError, match="must be an SAE"):
        tiny.run_with_saes(x, saes=["blocks.0"])
    with pytest.raises(ValueError, match="names no hook"):
        tiny.run_with_saes(x, saes=[pw.SAE(d_in=192, d_sae=8, k=2)])
    with pytest.raises(pw.HookNameError):
        tiny.run_with_saes(x, saes=[("blocks.0.hook_resid_psot", sae)])
    with pytest.raises(ValueError, match="two SAEs"):
        tiny.run_with_saes(x, saes=[sae, sae])
    with pytest.raises(ValueError, match="feature 64 does not exist.*64 features"):
        tiny.run_with_saes(x, saes=[sae], edits=[pw.FeatureEdit(64)])
    with pytest.raises(ValueError, match="op must be one of"):
        pw.FeatureEdit(1, "double")
    with pytest.raises(ValueError, match="finite number"):
        pw.FeatureEdit(1, "scale", float("nan"))
    with pytest.raises(ValueError, match=r"positions \[0\] are outside"):
        tiny.run_with_saes(x, saes=[sae], edits=[pw.FeatureEdit(1, positions=[0])])  # the CLS: not a patch
    with pytest.raises(ValueError, match="several SAEs"):
        tiny.run_with_saes(x, saes=[sae, ("blocks.1.hook_resid_pre", sae)], edits=[pw.FeatureEdit(1)])
    with pytest.raises(ValueError, match=r"reads 192-wide activations, but that hook.s are 768 wide"):
        tiny.run_with_saes(x, saes=[("blocks.0.mlp.hook_post", sae)])
    transcoder = pw.SAE(d_in=192, d_sae=8, arch="relu", kind="transcoder", d_out=192, hook=HOOK,
                        hook_out="blocks.1.hook_mlp_out")
    with pytest.raises(ValueError, match="this is a transcoder"):
        tiny.run_with_saes(x, saes=[transcoder])
