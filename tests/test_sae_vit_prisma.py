"""ViT-Prisma's SAE layout (config.json + a state dict) read here, written by a fixture as ViT-Prisma writes it;
and hub names: ``pw.SAE.load("hf:...")`` offline fails at once, saying what to do."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

import prisma_widgets as pw
from prisma_widgets.sae.config import ARCHS
from prisma_widgets.sae.hub import split_hub_name

pytestmark = pytest.mark.usefixtures("one_thread")

D_IN, D_SAE = 12, 36


def _vit_prisma_config(**over):
    """The fields ViT-Prisma's VisionModelSAERunnerConfig.save_config writes (dtype and device as its tagged dicts)."""
    cfg = {
        "model_name": "open-clip:laion/CLIP-ViT-B-32", "hook_point_layer": 3, "layer_subtype": "hook_mlp_out",
        "hook_point_head_index": None, "d_in": D_IN, "activation_fn_str": "relu", "activation_fn_kwargs": {},
        "cls_token_only": False, "normalize_activations": "none", "architecture": "standard",
        "expansion_factor": D_SAE // D_IN, "d_sae": D_SAE, "l1_coefficient": 1e-4, "lp_norm": 1,
        "dtype": {"__type__": "torch.dtype", "value": "torch.float32"},
        "device": {"__type__": "torch.device", "value": "cpu"},
    }
    cfg.update(over)
    return cfg


def _state_dict(arch: str = "standard", seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    sd = {"W_enc": torch.randn(D_IN, D_SAE, generator=g), "b_enc": torch.randn(D_SAE, generator=g),
          "W_dec": torch.randn(D_SAE, D_IN, generator=g), "b_dec": torch.randn(D_IN, generator=g)}
    if arch == "gated":
        sd.update(b_gate=torch.randn(D_SAE, generator=g), r_mag=0.3 * torch.randn(D_SAE, generator=g),
                  b_mag=torch.randn(D_SAE, generator=g))
    return sd


def _write(folder, cfg, sd, name="n_images_1024.pt"):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(cfg, indent=4))
    torch.save(sd, folder / name)


def _reference(sd, act: str, k: int | None = None):
    """ViT-Prisma's encode and decode, written out: (x - b_dec) @ W_enc + b_enc, then the activation."""
    def encode(x):
        pre = (x - sd["b_dec"]) @ sd["W_enc"] + sd["b_enc"]
        if act == "topk":
            top = pre.topk(k, dim=-1)
            return torch.zeros_like(pre).scatter(-1, top.indices, top.values.relu())
        if act == "gated":
            sae_in = x - sd["b_dec"]
            gate = (sae_in @ sd["W_enc"] + sd["b_gate"] > 0).float()
            return gate * (sae_in @ (sd["W_enc"] * sd["r_mag"].exp()) + sd["b_mag"]).relu()
        return pre.relu()
    return encode, lambda f: f @ sd["W_dec"] + sd["b_dec"]


@pytest.mark.parametrize("act,k", [("relu", None), ("topk", 4)])
def test_reads_vit_prisma_standard_saes(tmp_path, act, k):
    sd = _state_dict()
    _write(tmp_path / "sae", _vit_prisma_config(activation_fn_str=act, activation_fn_kwargs={"k": k} if k else {}), sd)
    sae = pw.SAE.load(str(tmp_path / "sae"))
    assert (sae.cfg.arch, sae.cfg.k, sae.cfg.hook) == ({"relu": "relu", "topk": "topk"}[act], k, "blocks.3.hook_mlp_out")
    assert sae.cfg.tokens == "all" and sae.cfg.model == "open-clip:laion/CLIP-ViT-B-32"
    encode, decode = _reference(sd, act, k)
    x = torch.randn(9, D_IN, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(sae.encode(x), encode(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae(x), decode(encode(x)), rtol=1e-5, atol=1e-5)
    # the state-dict file itself works too, and so does safetensors
    assert pw.SAE.load(str(tmp_path / "sae" / "n_images_1024.pt")).cfg.arch == sae.cfg.arch
    (tmp_path / "sae" / "n_images_1024.pt").unlink()
    save_file(sd, tmp_path / "sae" / "weights.safetensors")
    torch.testing.assert_close(pw.SAE.load(str(tmp_path / "sae")).encode(x), encode(x), rtol=1e-5, atol=1e-5)


def test_reads_vit_prisma_gated_saes(tmp_path):
    sd = _state_dict("gated")
    _write(tmp_path, _vit_prisma_config(architecture="gated", cls_token_only=True), sd)
    assert "gated" in ARCHS
    sae = pw.SAE.load(str(tmp_path))
    assert sae.cfg.arch == "gated" and sae.cfg.tokens == "cls"
    encode, decode = _reference(sd, "gated")
    x = torch.randn(9, D_IN, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(sae.encode(x), encode(x), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(sae(x), decode(encode(x)), rtol=1e-5, atol=1e-5)


def test_the_last_training_checkpoint_is_read(tmp_path):
    _write(tmp_path, _vit_prisma_config(), _state_dict(seed=1), "n_images_512.pt")
    torch.save(_state_dict(seed=2), tmp_path / "n_images_2048.pt")
    torch.save(torch.zeros(D_SAE), tmp_path / "n_images_2048_log_feature_sparsity.pt")
    sae = pw.SAE.load(str(tmp_path))
    assert torch.equal(sae.W_enc, _state_dict(seed=2)["W_enc"])


def test_vit_prisma_files_we_cannot_honour_are_refused(tmp_path):
    sd = _state_dict()
    _write(tmp_path / "ln", _vit_prisma_config(normalize_activations="layer_norm"), sd)
    with pytest.raises(ValueError, match="normalises every token \\('layer_norm'\\)"):
        pw.SAE.load(str(tmp_path / "ln"))
    _write(tmp_path / "head", _vit_prisma_config(hook_point_head_index=2), sd)
    with pytest.raises(ValueError, match="one attention head"):
        pw.SAE.load(str(tmp_path / "head"))
    _write(tmp_path / "tanh", _vit_prisma_config(activation_fn_str="tanh-relu"), sd)
    with pytest.raises(ValueError, match="'tanh-relu' is not supported"):
        pw.SAE.load(str(tmp_path / "tanh"))


class _PickledConfig:
    """Stands in for ViT-Prisma's config object, which its older checkpoints pickle next to the weights."""


def test_a_checkpoint_that_pickles_objects_is_refused_never_unpickled(tmp_path):
    _write(tmp_path, _vit_prisma_config(), {"cfg": _PickledConfig(), "state_dict": _state_dict()})
    with pytest.raises(ValueError, match=r"never unpickles.*\['state_dict'\]"):
        pw.SAE.load(str(tmp_path))
    # a checkpoint holding only tensors (its state dict under "state_dict") is fine
    _write(tmp_path, _vit_prisma_config(), {"state_dict": _state_dict()})
    assert pw.SAE.load(str(tmp_path)).cfg.arch == "relu"


def test_hub_names(monkeypatch):
    assert split_hub_name("hf:owner/repo") == ("owner/repo", "")
    assert split_hub_name("hf:owner/repo/a/b") == ("owner/repo", "a/b")
    for bad in ("hf:repo", "hf:owner/../x", "hf:/"):
        with pytest.raises(ValueError, match="hf:<owner>/<repo>"):
            pw.SAE.load(bad)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(OSError, match=r"cannot load the SAE 'hf:nobody/no-such-sae': offline .* not in the local hub"):
        pw.SAE.load("hf:nobody/no-such-sae")
    with pytest.raises(TypeError, match="path must be a folder"):
        pw.SAE.load(3)
