"""Transcoders, crosscoders and activation stores of several hooks: training, evaluation against hand
computations, resume, files, bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import prisma_widgets as pw

pytestmark = pytest.mark.usefixtures("one_thread")

LN2, MLP_OUT = "blocks.1.ln2.hook_normalized", "blocks.1.hook_mlp_out"
RESID = ["blocks.1.hook_resid_post", "blocks.2.hook_resid_post"]


@pytest.fixture(scope="module")
def mouse():
    return pw.load("mouse-vit")


@pytest.fixture(scope="module")
def shapes():
    return pw.zoo.shapes(6, seed=0)


@pytest.fixture(scope="module")
def multi(mouse, shapes, tmp_path_factory):
    folder = tmp_path_factory.mktemp("multi")
    return pw.cache_activations(mouse, shapes[0], [LN2, MLP_OUT, *RESID], folder / "c", progress=False,
                                dtype="float32", batch_size=4)


def pairs(n: int = 3000, d_in: int = 32, d_out: int = 10, m: int = 24, seed: int = 0):
    """Inputs and targets linked through ``m`` sparse features."""
    g = torch.Generator().manual_seed(seed)
    feats = F.relu(torch.randn(n, m, generator=g) - 1.0)
    return feats @ torch.randn(m, d_in, generator=g), feats @ torch.randn(m, d_out, generator=g)


def layers(n: int = 3000, d: int = 12, n_layers: int = 2, m: int = 24, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    feats = F.relu(torch.randn(n, m, generator=g) - 1.0)
    return torch.stack([feats @ torch.randn(m, d, generator=g) for _ in range(n_layers)], dim=1)


# ------------------------------------------------------------------ stores of several hooks
def test_multi_hook_store_equals_separate_single_hook_caches(mouse, shapes, multi, tmp_path):
    assert multi.hooks == [LN2, MLP_OUT, *RESID] and multi.widths == [128] * 4 and multi.d == 512
    for hook in multi.hooks:
        single = pw.cache_activations(mouse, shapes[0], hook, tmp_path / hook, progress=False, dtype="float32")
        assert torch.equal(single.to_tensor(), multi.select(hook).to_tensor()), hook
        assert torch.equal(single.read(3, 70), multi.read_hook(hook, 3, 70))
        assert "hooks" not in single.manifest and single.hooks == [hook]  # the one-hook format is unchanged
    both = multi.select([MLP_OUT, LN2])  # any order, side by side
    assert torch.equal(both.read(0, 9), torch.cat([multi.read_hook(MLP_OUT, 0, 9), multi.read_hook(LN2, 0, 9)], 1))
    again = pw.ActivationStore(multi.path)  # read back from disk
    assert again.hooks == multi.hooks and again.complete
    # the same call reuses it; another hook list is refused
    assert pw.cache_activations(mouse, shapes[0], [LN2, MLP_OUT, *RESID], multi.path, progress=False,
                                dtype="float32").complete
    with pytest.raises(ValueError, match=r"was made with hook="):
        pw.cache_activations(mouse, shapes[0], [LN2, MLP_OUT], multi.path, progress=False, dtype="float32")


def test_multi_hook_store_bad_input(multi, mouse, shapes, tmp_path):
    with pytest.raises(ValueError, match=r"holds .*'blocks\.1\.ln2\.hook_normalized'.*not 'blocks\.3\.hook_mlp_out'"):
        multi.select("blocks.3.hook_mlp_out")
    with pytest.raises(ValueError, match=r"repeat one; name each hook once"):
        pw.cache_activations(mouse, shapes[0], [LN2, LN2], tmp_path / "x", progress=False)
    with pytest.raises(TypeError, match=r"hook must be a hook name .*or a list of them"):
        pw.cache_activations(mouse, shapes[0], [LN2, 3], tmp_path / "y", progress=False)
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()


# ------------------------------------------------------------------ transcoders
def test_transcoder_trains_from_pairs():
    x, y = pairs()
    losses: list[float] = []
    tc = pw.train_sae((x, y), expansion=4, k=6, batch_size=256, steps=150, lr=3e-3, progress=False, log_every=10,
                      callback=lambda s, sae, m: losses.append(m["loss"]) if m else None)
    assert tc.kind == "transcoder" and tc.W_enc.shape == (32, 128) and tc.W_dec.shape == (128, 10)
    assert losses[-1] < 0.5 * losses[0]
    res = tc.evaluate((x, y))
    assert res["explained_variance"] > 0.6 and res["l0"] <= 6
    pred = tc(x[:7])
    assert pred.shape == (7, 10)
    # explained variance of the target, by hand
    with torch.no_grad():
        resid = (y - tc(x)).double()
    ev = 1 - resid.pow(2).sum() / (y.double() - y.double().mean(0)).pow(2).sum()
    assert res["explained_variance"] == pytest.approx(float(ev), abs=1e-6)


@pytest.mark.parametrize("arch", ["relu", "jumprelu", "gated"])
def test_transcoders_of_every_penalty_architecture_train(arch):
    x, y = pairs(n=2000)
    tc = pw.train_sae((x, y), expansion=4, arch=arch, batch_size=256, steps=100, lr=3e-3, progress=False)
    assert tc.evaluate((x, y))["explained_variance"] > 0.3


def test_transcoder_evaluation_matches_a_hand_splice(mouse, shapes, multi):
    images, labels = shapes
    tc = pw.SAE(d_in=128, d_sae=64, arch="topk", k=8, kind="transcoder", d_out=128, hook=LN2, hook_out=MLP_OUT)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        tc.b_enc.copy_(torch.randn(64, generator=g) * 0.1)
        tc.b_dec.copy_(torch.randn(128, generator=g) * 0.1)
    res = tc.evaluate(multi, model=mouse, images=images, labels=labels)
    # by hand: the transcoder's prediction from ln2 replaces the MLP's output; the floor zeroes it
    pixels = mouse.preprocess(list(images))
    with torch.no_grad():
        clean = mouse(pixels)
        _, cache = mouse.run_with_cache(pixels, LN2)
        pred = (tc.encode(cache[LN2]) @ tc.W_dec + tc.b_dec)
        spliced = mouse.run_with_hooks(pixels, [(MLP_OUT, lambda x, hook: pred)])
        zero = mouse.run_with_hooks(pixels, [(MLP_OUT, lambda x, hook: torch.zeros_like(x))])
    target = torch.as_tensor(labels)
    for key, logits in (("clean", clean), ("spliced", spliced), ("zero", zero)):
        assert res[f"loss_{key}"] == pytest.approx(float(F.cross_entropy(logits, target)), rel=1e-5), key
        assert res[f"accuracy_{key}"] == pytest.approx(float((logits.argmax(-1) == target).float().mean()))
    gap = res["loss_zero"] - res["loss_clean"]
    assert res["loss_recovered"] == pytest.approx((res["loss_zero"] - res["loss_spliced"]) / gap)
    assert not torch.allclose(spliced, clean, atol=1e-3)  # the splice changed something (the check can fail)
    # reconstruction metrics: the MLP output predicted from ln2, read from the store's two hooks
    x, y = multi.read_hook(LN2, 0, len(multi)), multi.read_hook(MLP_OUT, 0, len(multi))
    with torch.no_grad():
        ev = 1 - (y - tc(x)).double().pow(2).sum() / (y.double() - y.double().mean(0)).pow(2).sum()
    assert res["explained_variance"] == pytest.approx(float(ev), abs=1e-6)


def test_transcoder_from_a_store_trains_and_resumes_bit_identically(multi, tmp_path):
    kw = dict(kind="transcoder", hooks=[LN2, MLP_OUT], expansion=2, k=8, batch_size=64, steps=20, seed=3,
              chunk_rows=100, checkpoint_every=5, log_every=5, progress=False)
    clean = pw.train_sae(multi, checkpoint_dir=tmp_path / "clean", **kw)
    assert clean.cfg.hook == LN2 and clean.cfg.hook_out == MLP_OUT and clean.cfg.d_out == 128

    def stop(step, sae, metrics):
        if step == 12:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pw.train_sae(multi, checkpoint_dir=tmp_path / "run", callback=stop, **kw)
    resumed = pw.train_sae(multi, checkpoint_dir=tmp_path / "run", **kw)
    for key, value in clean.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key
    back = pw.SAE.load(tmp_path / "run" / "sae")
    assert back.cfg.kind == "transcoder" and back.cfg.hook_out == MLP_OUT
    assert torch.equal(back(multi.read_hook(LN2, 0, 5)), resumed(multi.read_hook(LN2, 0, 5)))


# ------------------------------------------------------------------ crosscoders
def test_crosscoder_encoder_sums_over_layers_and_decoder_writes_each():
    cc = pw.SAE(d_in=6, d_sae=20, arch="relu", k=None, kind="crosscoder", n_layers=3)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in cc.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    assert cc.W_enc.shape == (3, 6, 20) and cc.W_dec.shape == (20, 3, 6) and cc.b_dec.shape == (3, 6)
    x = torch.randn(5, 3, 6, generator=g)
    pre = sum((x[:, i] - cc.b_dec[i]) @ cc.W_enc[i] for i in range(3)) + cc.b_enc
    f = cc.encode(x)
    torch.testing.assert_close(f, F.relu(pre))
    out = cc.decode(f)
    assert out.shape == (5, 3, 6)
    for i in range(3):
        torch.testing.assert_close(out[:, i], f @ cc.W_dec[:, i] + cc.b_dec[i])
    torch.testing.assert_close(cc(x.reshape(5, 18)).reshape(5, 3, 6), cc(x))  # flat rows read the same


def test_crosscoder_trains_and_reports_each_layer():
    x = layers()
    losses: list[float] = []
    cc = pw.train_sae(x, expansion=4, k=6, batch_size=256, steps=150, lr=3e-3, progress=False, log_every=10,
                      callback=lambda s, sae, m: losses.append(m["loss"]) if m else None)
    assert cc.kind == "crosscoder" and cc.cfg.n_layers == 2 and cc.d_sae == 48
    assert losses[-1] < 0.5 * losses[0]
    norms = cc.W_dec.detach().reshape(48, -1).norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones_like(norms))  # TopK: unit rows across the layers
    res = cc.evaluate(x)
    with torch.no_grad():
        recon = cc(x).double()
    xd = x.double()
    for i in range(2):
        ev = 1 - (xd[:, i] - recon[:, i]).pow(2).sum() / (xd[:, i] - xd[:, i].mean(0)).pow(2).sum()
        assert res["explained_variance_per_layer"][i] == pytest.approx(float(ev), abs=1e-6)
    assert res["explained_variance"] > 0.6


def test_exact_crosscoder_recovers_every_layer(mouse, shapes, multi, tmp_path):
    """relu(x) - relu(-x) = x layer by layer: every splice recovers 100%."""
    d, n = 128, 2
    cc = pw.SAE(d_in=d, d_sae=2 * n * d, arch="relu", k=None, kind="crosscoder", n_layers=n, hooks=RESID)
    eye = torch.eye(n * d)
    with torch.no_grad():
        cc.W_enc.copy_(torch.cat([eye, -eye], 1).reshape(n, d, -1))
        cc.W_dec.copy_(torch.cat([eye, -eye], 0).reshape(-1, n, d))
    res = cc.evaluate(multi, model=mouse, images=shapes[0])
    assert res["explained_variance"] > 0.999999 and min(res["explained_variance_per_layer"]) > 0.999999
    assert res["loss_recovered"] == pytest.approx(1.0, abs=1e-4)
    assert res["loss_recovered_per_layer"] == pytest.approx([1.0, 1.0], abs=1e-4)
    cc.save(tmp_path / "cc")
    back = pw.SAE.load(tmp_path / "cc")
    assert back.cfg.hooks == RESID and back.cfg.kind == "crosscoder"
    assert json.loads((tmp_path / "cc" / "cfg.json").read_text())["prisma_widgets"]["n_layers"] == 2
    assert torch.equal(back.W_enc, cc.W_enc)


def test_crosscoder_from_a_store(multi):
    cc = pw.train_sae(multi, kind="crosscoder", hooks=RESID, expansion=2, k=8, batch_size=128, steps=30,
                      progress=False)
    assert cc.cfg.hooks == RESID and cc.W_enc.shape == (2, 128, 256)
    assert cc.evaluate(multi)["explained_variance"] > 0.3


# ------------------------------------------------------------------ bad input
def test_bad_family_inputs_are_refused(multi, mouse, shapes):
    x, y = pairs(n=100)
    with pytest.raises(ValueError, match=r"comes before .* in the forward pass.*hooks=\['blocks\.1\.ln2"):
        pw.train_sae(multi, kind="transcoder", hooks=[MLP_OUT, LN2], progress=False)
    with pytest.raises(ValueError, match=r"both are .*train an SAE"):
        pw.train_sae((x, x), hooks=[LN2, LN2], progress=False)
    with pytest.raises(ValueError, match=r"holds 4 hooks .*kind='transcoder'.*kind='crosscoder'"):
        pw.train_sae(multi, progress=False)
    with pytest.raises(ValueError, match=r"inputs have 100 rows but its targets 99"):
        pw.train_sae((x, y[:99]), progress=False)
    with pytest.raises(TypeError, match=r"a transcoder trains on pairs"):
        pw.train_sae(x, kind="transcoder", progress=False)
    with pytest.raises(ValueError, match=r"kind must be one of 'sae', 'transcoder', 'crosscoder'"):
        pw.train_sae(x, kind="clt", progress=False)
    with pytest.raises(ValueError, match=r"reads two layers or more"):
        pw.train_sae(torch.zeros(10, 1, 4), progress=False)
    tc = pw.SAE(d_in=128, d_sae=8, k=2, kind="transcoder", d_out=128, hook=MLP_OUT, hook_out=LN2)
    with pytest.raises(ValueError, match=r"comes before"):
        tc.evaluate(multi, model=mouse, images=shapes[0])
    small = pw.SAE(d_in=12, d_sae=8, k=2, kind="transcoder", d_out=10)
    with pytest.raises(ValueError, match=r"reads 12 -> 10 wide activations, but the data holds 128 -> 128"):
        small.evaluate((multi.read_hook(LN2, 0, 10), multi.read_hook(MLP_OUT, 0, 10)))


def test_crosscoder_of_mismatched_widths_is_refused(mouse, shapes, tmp_path):
    store = pw.cache_activations(mouse, shapes[0][:2], ["blocks.0.hook_resid_post", "blocks.0.mlp.hook_post"],
                                 tmp_path / "c", progress=False)
    with pytest.raises(ValueError, match=r"layers of one width, but blocks\.0\.hook_resid_post is 128, "
                                         r"blocks\.0\.mlp\.hook_post is 512 wide"):
        pw.train_sae(store, kind="crosscoder", progress=False)
    assert np.isfinite(store.to_tensor().numpy()).all()


def test_feature_stats_read_a_transcoder_and_refuse_a_crosscoder(mouse, shapes):
    tc = pw.SAE(d_in=128, d_sae=16, arch="relu", k=None, kind="transcoder", d_out=128, hook=LN2, hook_out=MLP_OUT)
    with torch.no_grad():
        tc.b_enc.fill_(0.5)
    stats = pw.feature_stats(mouse, tc, shapes[0][:3], progress=False)
    assert stats.frequency.shape == (16,) and stats.hook == LN2  # features of what the transcoder reads
    cc = pw.SAE(d_in=128, d_sae=16, k=2, kind="crosscoder", n_layers=2, hooks=RESID)
    with pytest.raises(ValueError, match=r"this crosscoder reads 2 layers at once .*sae\.evaluate"):
        pw.feature_stats(mouse, cc, shapes[0][:3], progress=False)
