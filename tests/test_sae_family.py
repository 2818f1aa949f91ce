"""The SAE family beyond TopK/ReLU: JumpReLU and Gated SAEs (training, estimators, resume, files, bad input)."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.nn.functional as F

import prisma_widgets as pw
from prisma_widgets.sae.losses import jumprelu, step, training_loss

pytestmark = pytest.mark.usefixtures("one_thread")


def synthetic(n: int = 4000, d: int = 16, m: int = 32, active: int = 3, seed: int = 123):
    """Rows made of ``active`` of ``m`` known unit directions with positive coefficients."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(m, d, generator=g)
    dirs /= dirs.norm(dim=1, keepdim=True)
    idx = torch.rand(n, m, generator=g).argsort(1)[:, :active]
    coef = torch.rand(n, active, generator=g) * 2 + 0.5
    return torch.zeros(n, m).scatter_(1, idx, coef) @ dirs


def random_sae(arch: str, d: int = 8, f: int = 24, seed: int = 0, **kw) -> pw.SAE:
    sae = pw.SAE(d_in=d, d_sae=f, arch=arch, k=None, **kw)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        if arch == "jumprelu":
            sae.threshold.copy_(torch.rand(f, generator=g))
    return sae


@pytest.mark.parametrize("arch", ["jumprelu", "gated"])
def test_each_architecture_trains(arch):
    x = synthetic()
    losses: list[float] = []
    sae = pw.train_sae(x, expansion=4, arch=arch, batch_size=256, steps=200, lr=3e-3, progress=False, log_every=20,
                       callback=lambda s, sae, m: losses.append(m["loss"]) if m else None)
    assert losses[-1] < 0.5 * losses[0]
    m = sae.evaluate(x)
    assert m["explained_variance"] > 0.8
    assert m["l0"] < sae.d_sae / 2  # the sparsity term works
    assert sae.arch == arch and isinstance(sae, pw.SAE)
    norms = sae.W_dec.detach().norm(dim=1)
    torch.testing.assert_close(norms, torch.ones_like(norms))  # trained with unit-norm decoder rows


def test_jumprelu_l0_coefficient_sets_sparsity():
    x = synthetic()
    kw = dict(expansion=4, arch="jumprelu", batch_size=256, steps=200, lr=3e-3, progress=False)
    loose, tight = pw.train_sae(x, l0=1e-4, **kw), pw.train_sae(x, l0=0.05, **kw)
    assert tight.evaluate(x)["l0"] < loose.evaluate(x)["l0"]
    assert float(tight.threshold.detach().mean()) > float(loose.threshold.detach().mean())  # learned through the STE


def test_jumprelu_encode_is_relu_with_a_per_latent_jump():
    sae = random_sae("jumprelu")
    x = torch.randn(10, 8)
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    expected = torch.where(pre > sae.threshold, F.relu(pre), torch.zeros(()))
    torch.testing.assert_close(sae.encode(x), expected)


def test_jumprelu_threshold_gradients_follow_the_rectangle_kernel():
    """The straight-through estimators against a hand computation of SAE-Lens' pseudo-derivatives."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 6, generator=g)
    t = torch.rand(6, generator=g).requires_grad_()
    up = torch.randn(50, 6, generator=g)
    b = 0.3
    window = ((x - t.detach()).abs() < b / 2).float()
    (step(x, t, b) * up).sum().backward()
    torch.testing.assert_close(t.grad, (-(1 / b) * window * up).sum(0))
    t.grad = None
    xr = x.clone().requires_grad_()
    (jumprelu(xr, t, b) * up).sum().backward()
    torch.testing.assert_close(t.grad, (-(t.detach() / b) * window * up).sum(0))
    torch.testing.assert_close(xr.grad, (x > t.detach()).float() * up)  # x: the plain mask
    assert window.sum() > 0  # some x were inside the kernel, so the check means something


def test_jumprelu_threshold_gets_gradients_in_the_training_loss():
    sae = random_sae("jumprelu")
    x = torch.randn(64, 8)
    loss, _ = training_loss(sae, x, x, 1.0, 0.01, 0, 0.0, 1, False, bandwidth=0.5)
    loss.backward()
    assert sae.threshold.grad is not None and sae.threshold.grad.abs().sum() > 0


def test_gated_encode_and_aux_loss_by_hand():
    sae = random_sae("gated")
    x = torch.randn(32, 8)
    sin = x - sae.b_dec
    gate = sin @ sae.W_enc + sae.b_gate
    mag = sin @ (sae.W_enc * sae.r_mag.exp()) + sae.b_mag
    f = (gate > 0).float() * F.relu(mag)
    torch.testing.assert_close(sae.encode(x), f)
    loss, parts = training_loss(sae, x, x, 0.5, 0.1, 0, 0.0, 1, False)
    via_gate = F.relu(gate) @ sae.W_dec + sae.b_dec
    aux = (x - via_gate).pow(2).sum() * 0.5 / 32
    torch.testing.assert_close(parts["aux"], aux.detach())
    mse = (x - sae.decode(f)).pow(2).sum() * 0.5 / 32
    l1 = (F.relu(gate) * sae.W_dec.norm(dim=-1)).sum() * math.sqrt(0.5) / 32
    torch.testing.assert_close(loss, mse + 0.1 * l1 + aux)
    # the auxiliary loss reaches the gate, never the decoder (it reconstructs through a frozen copy)
    sae.zero_grad()
    via = F.relu(sae.pre_acts(x)) @ sae.W_dec.detach() + sae.b_dec.detach()
    (x - via).pow(2).sum().backward()
    assert sae.W_dec.grad is None and sae.b_gate.grad.abs().sum() > 0


def test_gated_decoder_never_moves_through_the_aux_loss():
    sae = random_sae("gated")
    x = torch.randn(32, 8)
    with torch.no_grad():
        sae.r_mag.fill_(-30)  # magnitudes ~0: the reconstruction cannot depend on the decoder's rows ...
        sae.b_mag.zero_()
    loss, parts = training_loss(sae, x, x, 1.0, 0.0, 0, 0.0, 1, False)
    loss.backward()
    # ... so only b_dec (the bias of the main reconstruction) moves the output; W_dec gets ~no gradient
    assert sae.W_dec.grad.abs().max() < 1e-6
    assert sae.b_gate.grad.abs().sum() > 0 and parts["aux"] > 0


def _snapshot(sae: pw.SAE) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in sae.state_dict().items()}


@pytest.mark.parametrize("arch", ["jumprelu", "gated"])
def test_interrupted_and_resumed_run_is_bit_identical(tmp_path, arch):
    x = synthetic(n=3000)
    kwargs = dict(expansion=4, arch=arch, batch_size=256, steps=30, seed=5, progress=False, chunk_rows=700,
                  checkpoint_every=10, log_every=5)
    clean = pw.train_sae(x, checkpoint_dir=tmp_path / "clean", **kwargs)
    seen: list[int] = []

    def stop_at_17(step, sae, metrics):
        seen.append(step)
        if step == 17:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        pw.train_sae(x, checkpoint_dir=tmp_path / "run", callback=stop_at_17, **kwargs)
    seen.clear()
    resumed = pw.train_sae(x, checkpoint_dir=tmp_path / "run", callback=lambda s, *_: seen.append(s), **kwargs)
    assert seen[0] == 18 and seen[-1] == 30
    a, b = _snapshot(clean), _snapshot(resumed)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert json.loads((tmp_path / "run" / "checkpoint.json").read_text())["step"] == 30
    again = pw.train_sae(x, checkpoint_dir=tmp_path / "run", **kwargs)  # a finished run is reused
    torch.testing.assert_close(again.encode(x[:50]), resumed.encode(x[:50]), rtol=0, atol=0)
    other = pw.train_sae(x, **{**kwargs, "seed": 6})
    assert not torch.equal(other.W_dec, clean.W_dec)


@pytest.mark.parametrize("arch", ["jumprelu", "gated"])
def test_save_load_round_trip(tmp_path, arch):
    sae = random_sae(arch, hook="blocks.0.hook_resid_post")
    sae.save(tmp_path / "s")
    cfg = json.loads((tmp_path / "s" / "cfg.json").read_text())
    assert cfg["architecture"] == arch
    back = pw.SAE.load(tmp_path / "s")
    assert back.arch == arch
    assert dict(back.named_parameters()).keys() == dict(sae.named_parameters()).keys()
    for name, p in sae.named_parameters():
        assert torch.equal(p, getattr(back, name)), name
    x = torch.randn(20, 8)
    assert torch.equal(back.encode(x), sae.encode(x))
    from safetensors.torch import load_file

    names = set(load_file(str(tmp_path / "s" / "sae_weights.safetensors")))
    expected = {"jumprelu": {"W_enc", "b_enc", "W_dec", "b_dec", "threshold"},
                "gated": {"W_enc", "b_gate", "r_mag", "b_mag", "W_dec", "b_dec"}}[arch]
    assert names == expected  # SAE-Lens' tensor names, one to one


def test_feature_stats_read_jumprelu_and_gated():
    mouse = pw.load("mouse-vit")
    images, _ = pw.zoo.shapes(3, seed=0)
    for arch in ("jumprelu", "gated"):
        sae = random_sae(arch, d=128, f=16, hook="blocks.1.hook_resid_post")
        with torch.no_grad():
            if arch == "jumprelu":
                sae.threshold.zero_()
        stats = pw.feature_stats(mouse, sae, images, progress=False)
        assert stats.frequency.shape == (16,) and float(stats.frequency.max()) > 0


def test_unknown_architecture_names_the_valid_ones():
    x = synthetic(n=100)
    with pytest.raises(ValueError, match=r"arch must be one of .*'jumprelu'.*'gated'"):
        pw.train_sae(x, arch="jump", progress=False)
    with pytest.raises(ValueError, match=r"unknown SAE architecture 'tanh'; choose one of .*jumprelu, gated"):
        pw.SAE(d_in=4, d_sae=8, arch="tanh")


@pytest.mark.parametrize("bad, match", [
    (dict(l0=-1.0), r"l0 must be"), (dict(bandwidth=0.0), r"bandwidth must be .*> 0"),
    (dict(threshold_init=float("nan")), r"threshold_init must be"),
])
def test_bad_jumprelu_settings_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        pw.train_sae(synthetic(n=100), arch="jumprelu", progress=False, **bad)


KILL_SCRIPT = """
import sys, time, torch
import prisma_widgets as pw
g = torch.Generator().manual_seed(0)
x = torch.randn(2000, 2, 8, generator=g) ** 3
data = {"crosscoder": x, "transcoder": (x[:, 0], x[:, 1])}.get(sys.argv[2], x[:, 0])
arch = sys.argv[2] if sys.argv[2] in ("jumprelu", "gated") else "topk"
pw.train_sae(data, arch=arch, k=4, expansion=4, batch_size=128, steps=60, seed=1, checkpoint_dir=sys.argv[1],
             checkpoint_every=5, log_every=5, progress=False, callback=lambda *a: time.sleep(float(sys.argv[3])))
print("finished")
"""


@pytest.mark.parametrize("what", ["jumprelu", "gated", "transcoder", "crosscoder"])
def test_kill_9_mid_training_resumes_bit_identically(tmp_path, what):
    """SIGKILL at any moment leaves the last checkpoint whole; the same call resumes to an uninterrupted run."""
    script = tmp_path / "train.py"
    script.write_text(KILL_SCRIPT)
    run = tmp_path / "run"
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = {**os.environ, "PYTHONPATH": repo, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), str(run), what, "0.05"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    try:
        while time.time() < deadline:
            summary = run / "checkpoint.json"
            if summary.exists():
                try:
                    if json.loads(summary.read_text())["step"] >= 15:
                        break
                except (ValueError, KeyError):
                    pass  # mid-replace: read again
            assert proc.poll() is None, proc.stderr.read().decode()
            time.sleep(0.02)
        else:
            pytest.fail("the training subprocess made no progress")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    step = json.loads((run / "checkpoint.json").read_text())["step"]
    assert 15 <= step < 60, "the kill must land mid-run"
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2000, 2, 8, generator=g) ** 3
    data = {"crosscoder": x, "transcoder": (x[:, 0], x[:, 1])}.get(what, x[:, 0])
    arch = what if what in ("jumprelu", "gated") else "topk"
    kw = dict(arch=arch, k=4, expansion=4, batch_size=128, steps=60, seed=1, checkpoint_every=5, log_every=5,
              progress=False)
    seen: list[int] = []
    resumed = pw.train_sae(data, checkpoint_dir=run, callback=lambda s, *_: seen.append(s), **kw)
    assert seen[0] == step + 1  # resumed from the checkpoint, not restarted
    clean = pw.train_sae(data, checkpoint_dir=tmp_path / "clean", **kw)
    assert resumed.kind == clean.kind and (what not in ("transcoder", "crosscoder") or resumed.kind == what)
    for key, value in clean.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_estimators_and_encoders_match_the_real_sae_lens():
    """Our JumpReLU STEs and our JumpReLU / Gated encoders against SAE-Lens' own, on the same tensors."""
    sl = pytest.importorskip("sae_lens")
    from sae_lens.saes.jumprelu_sae import JumpReLU as SLJumpReLU
    from sae_lens.saes.jumprelu_sae import Step as SLStep

    g = torch.Generator().manual_seed(3)
    x = torch.randn(40, 6, generator=g)
    t0 = torch.rand(6, generator=g)
    up = torch.randn(40, 6, generator=g)
    for ours, theirs in ((step, lambda a, b, w: SLStep.apply(a, b, w, False)),
                         (jumprelu, lambda a, b, w: SLJumpReLU.apply(a, b, w, False))):
        grads = []
        for fn in (ours, theirs):
            xr, t = x.clone().requires_grad_(), t0.clone().requires_grad_()
            out = fn(xr, t, 0.4)
            (out * up).sum().backward()
            grads.append((out.detach(), t.grad, xr.grad))
        torch.testing.assert_close(grads[0][0], grads[1][0])
        torch.testing.assert_close(grads[0][1], grads[1][1])
        if grads[1][2] is not None:
            torch.testing.assert_close(grads[0][2], grads[1][2])
    for arch, cls_name in (("jumprelu", "JumpReLUSAE"), ("gated", "GatedSAE")):
        ours = random_sae(arch, d=8, f=24, seed=4)
        theirs = getattr(sl, cls_name)(getattr(sl, cls_name + "Config")(d_in=8, d_sae=24))
        theirs.load_state_dict({k: v.detach().clone() for k, v in ours.named_parameters()})
        xs = torch.randn(30, 8, generator=g)
        with torch.no_grad():
            torch.testing.assert_close(ours.encode(xs), theirs.encode(xs))
            torch.testing.assert_close(ours(xs), theirs(xs))
