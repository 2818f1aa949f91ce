"""SAE files: our save/load round trip, SAE-Lens folders, refusals."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import prisma_widgets as pw


pytestmark = pytest.mark.usefixtures("one_thread")


def _random_sae(arch: str = "topk", d_in: int = 192, d_sae: int = 48, k: int | None = 5, seed: int = 0) -> pw.SAE:
    torch.manual_seed(seed)
    sae = pw.SAE(d_in=d_in, d_sae=d_sae, arch=arch, k=k, hook="blocks.1.hook_resid_post", model="m", tokens="patches")
    with torch.no_grad():
        for p in sae.parameters():
            p.normal_()
        sae.threshold.fill_(0.25)
    return sae


@pytest.mark.parametrize("arch,k", [("topk", 5), ("batchtopk", 5), ("relu", None)])
def test_save_load_round_trip(tmp_path, arch, k):
    sae = _random_sae(arch, k=k)
    sae.save(tmp_path / "sae")
    back = pw.SAE.load(str(tmp_path / "sae"))
    assert back.cfg.arch == arch and back.cfg.k == k and back.cfg.hook == sae.cfg.hook and back.cfg.tokens == "patches"
    for key in ("W_enc", "b_enc", "W_dec", "b_dec"):
        assert torch.equal(getattr(back, key), getattr(sae, key)), key
    x = torch.randn(7, sae.d_in)
    assert torch.equal(back.encode(x), sae.encode(x)) and torch.equal(back(x), sae(x))
    cfg = json.loads((tmp_path / "sae" / "cfg.json").read_text())
    assert cfg["d_in"] == 192 and cfg["d_sae"] == 48 and cfg["hook_name"] == "blocks.1.hook_resid_post"


def test_reads_a_sae_lens_folder(tmp_path):
    """A folder laid out as SAE-Lens writes it: W_enc [d_in, d_sae], W_dec [d_sae, d_in], topk with k in kwargs."""
    g = torch.Generator().manual_seed(1)
    d_in, d_sae, k = 16, 40, 4
    w = {"W_enc": torch.randn(d_in, d_sae, generator=g), "W_dec": torch.randn(d_sae, d_in, generator=g),
         "b_enc": torch.randn(d_sae, generator=g), "b_dec": torch.randn(d_in, generator=g)}
    save_file(w, tmp_path / "sae_weights.safetensors")
    (tmp_path / "cfg.json").write_text(json.dumps({
        "architecture": "topk", "d_in": d_in, "d_sae": d_sae, "activation_fn_str": "topk",
        "activation_fn_kwargs": {"k": k}, "apply_b_dec_to_input": True, "dtype": "float32", "device": "cpu",
        "hook_name": "blocks.0.hook_resid_post", "model_name": "vit", "normalize_activations": "none",
    }))
    sae = pw.SAE.load(str(tmp_path))
    assert (sae.cfg.arch, sae.cfg.k, sae.cfg.hook) == ("topk", k, "blocks.0.hook_resid_post")
    x = torch.randn(6, d_in, generator=g)
    pre = (x - w["b_dec"]) @ w["W_enc"] + w["b_enc"]  # the SAE-Lens definition, written out
    top = pre.topk(k, dim=-1)
    f = torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
    torch.testing.assert_close(sae.encode(x), f, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae(x), f @ w["W_dec"] + w["b_dec"], rtol=1e-5, atol=1e-5)
    # the weights file alone works too, and "standard" means ReLU
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    cfg.update(architecture="standard", activation_fn_str="relu", activation_fn_kwargs={})
    (tmp_path / "cfg.json").write_text(json.dumps(cfg))
    relu = pw.SAE.load(str(tmp_path / "sae_weights.safetensors"))
    assert relu.cfg.arch == "relu"
    torch.testing.assert_close(relu.encode(x), pre.relu(), rtol=1e-5, atol=1e-5)


def test_unsupported_or_broken_files_are_refused(tmp_path):
    sae = _random_sae()
    sae.save(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    bad = {**cfg, "normalize_activations": "expected_average_only_in"}
    (tmp_path / "cfg.json").write_text(json.dumps(bad))
    with pytest.raises(ValueError, match="normalises activations"):
        pw.SAE.load(str(tmp_path))
    (tmp_path / "cfg.json").write_text(json.dumps({**cfg, "d_sae": 49}))
    with pytest.raises(ValueError, match=r"W_enc has shape \[192, 48\], the config says \[192, 49\]"):
        pw.SAE.load(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="cfg.json"):
        pw.SAE.load(str(tmp_path / "nowhere"))


def test_width_mismatch_with_the_hook_is_refused(tiny, tmp_path):
    narrow = _random_sae(d_in=100)
    narrow.save(tmp_path / "narrow")
    with pytest.raises(ValueError, match=r"d_in=100.*'blocks\.1\.hook_resid_post'.*192 wide"):
        pw.SAE.load(str(tmp_path / "narrow"), model=tiny, hook="blocks.1.hook_resid_post")
    mlp = "blocks.0.mlp.hook_post"  # 768 wide on this model: the check reads the hook, not d_model
    with pytest.raises(ValueError, match="768 wide"):
        pw.SAE.load(str(tmp_path / "narrow"), model=tiny, hook=mlp)
    fits = _random_sae(d_in=tiny.cfg.d_model)
    fits.save(tmp_path / "fits")
    loaded = pw.SAE.load(str(tmp_path / "fits"), model=tiny)  # the hook from the file's config
    assert loaded.d_in == 192
