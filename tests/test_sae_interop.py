"""SAE files both ways with the real SAE-Lens package: its files load here, ours load there, and the two
compute the same features and reconstructions (to 1e-5) for every architecture both sides have; the rest is
refused with a clear error."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import prisma_widgets as pw
from prisma_widgets.sae.config import ARCHS

sae_lens = pytest.importorskip("sae_lens", reason="the SAE-Lens interop tests need sae-lens (the 'sae' extra)")
from sae_lens.saes.sae import SAEMetadata

pytestmark = pytest.mark.usefixtures("one_thread")

D_IN, D_SAE, K = 16, 48, 5
HOOK = "blocks.1.hook_resid_post"


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a.detach().float(), b.detach().float(), rtol=1e-5, atol=1e-5)


def _randomise(sae, seed: int) -> None:
    """Random weights, biases and thresholds (SAE-Lens starts biases and thresholds at zero)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if name in ("r_mag", "threshold") else 1.0))
            if name == "threshold":
                p.abs_()


def _lens_sae(arch: str, seed: int = 0, **extra):
    cls_name, cfg_name = {"standard": ("StandardSAE", "StandardSAEConfig"), "topk": ("TopKSAE", "TopKSAEConfig"),
                          "jumprelu": ("JumpReLUSAE", "JumpReLUSAEConfig"), "gated": ("GatedSAE", "GatedSAEConfig")}[arch]
    cfg = getattr(sae_lens, cfg_name)(d_in=D_IN, d_sae=D_SAE, metadata=SAEMetadata(hook_name=HOOK, model_name="m"), **extra)
    sae = getattr(sae_lens, cls_name)(cfg)
    _randomise(sae, seed)
    return sae


def _x(seed: int = 1) -> torch.Tensor:
    return torch.randn(3, 7, D_IN, generator=torch.Generator().manual_seed(seed))


def _same_maps(ours: pw.SAE, lens) -> None:
    x = _x()
    with torch.no_grad():
        f = lens.encode(x)
        close(ours.encode(x), f)
        close(ours.decode(f), lens.decode(f))
        close(ours(x), lens.decode(lens.encode(x)))
    assert (f != 0).any() and (f == 0).any(), "the comparison needs features that fire and features that do not"


# --------------------------------------------------------------------------------------------------
# SAE-Lens -> prisma_widgets
# --------------------------------------------------------------------------------------------------
LENS_CASES = [
    ("standard", {}, "relu"),
    ("topk", {"k": K}, "topk"),
    ("topk", {"k": K, "rescale_acts_by_decoder_norm": True}, "topk"),  # non-unit decoder rows, folded on load
    ("jumprelu", {}, "jumprelu"),
    ("gated", {}, "gated"),
]


@pytest.mark.parametrize("arch,extra,ours", LENS_CASES, ids=["standard", "topk", "topk-rescaled", "jumprelu", "gated"])
def test_sae_lens_files_load_here_and_compute_the_same(tmp_path, arch, extra, ours):
    lens = _lens_sae(arch, **extra)
    lens.save_model(tmp_path)
    assert ours in ARCHS
    sae = pw.SAE.load(str(tmp_path))
    assert (sae.cfg.arch, sae.cfg.hook, sae.cfg.model) == (ours, HOOK, "m")  # the hook from cfg["metadata"]
    if arch == "topk":
        assert sae.cfg.k == K
        if extra.get("rescale_acts_by_decoder_norm"):
            assert not torch.allclose(lens.W_dec.norm(dim=-1), torch.ones(D_SAE))  # the case the flag matters for
    _same_maps(sae, lens)


def test_a_sae_lens_hook_in_metadata_names_the_hook_for_a_model(tiny, tmp_path):
    lens = _lens_sae("standard")
    cfg = sae_lens.StandardSAEConfig(d_in=tiny.cfg.d_model, d_sae=8, metadata=SAEMetadata(hook_name=HOOK))
    sae_lens.StandardSAE(cfg).save_model(tmp_path)
    assert "hook_name" not in json.loads((tmp_path / "cfg.json").read_text())  # only under metadata
    loaded = pw.SAE.load(str(tmp_path), model=tiny)  # no hook= needed
    assert loaded.cfg.hook == HOOK and lens is not None


def test_sae_lens_batchtopk_saved_for_inference_loads(tmp_path):
    """SAE-Lens saves BatchTopK as JumpReLU with its learned threshold on every latent."""
    cfg = sae_lens.BatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, metadata=SAEMetadata(hook_name=HOOK))
    train = sae_lens.BatchTopKTrainingSAE(cfg)
    _randomise(train, 3)
    train.topk_threshold = torch.tensor(0.7, dtype=torch.double)
    train.save_inference_model(tmp_path)
    assert json.loads((tmp_path / "cfg.json").read_text())["architecture"] == "jumprelu"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lens = sae_lens.SAE.load_from_disk(str(tmp_path))
    sae = pw.SAE.load(str(tmp_path))
    assert sae.cfg.arch == "jumprelu"  # a JumpReLU file with one threshold value is still a JumpReLU here
    _same_maps(sae, lens)


def test_sae_lens_batchtopk_training_file_loads_as_batchtopk(tmp_path):
    """SAE-Lens' training checkpoint of a BatchTopK SAE (architecture 'batchtopk', its running topk_threshold,
    acts rescaled by decoder norms): ours reads it as BatchTopK and computes what SAE-Lens' inference export does."""
    cfg = sae_lens.BatchTopKTrainingSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K, metadata=SAEMetadata(hook_name=HOOK))
    train = sae_lens.BatchTopKTrainingSAE(cfg)
    _randomise(train, 8)
    train.topk_threshold = torch.tensor(0.9, dtype=torch.double)
    assert cfg.rescale_acts_by_decoder_norm
    train.save_model(tmp_path / "train")
    assert json.loads((tmp_path / "train" / "cfg.json").read_text())["architecture"] == "batchtopk"
    train.save_inference_model(tmp_path / "inference")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lens = sae_lens.SAE.load_from_disk(str(tmp_path / "inference"))
    sae = pw.SAE.load(str(tmp_path / "train"))
    assert (sae.cfg.arch, sae.cfg.k) == ("batchtopk", K)
    _same_maps(sae, lens)


@pytest.mark.parametrize("arch", ["transcoder", "jumprelu_transcoder"])
def test_sae_lens_transcoders_load_here_and_compute_the_same(tmp_path, arch):
    meta = SAEMetadata(hook_name="blocks.1.ln2.hook_normalized", hook_name_out="blocks.1.hook_mlp_out")
    if arch == "transcoder":
        lens = sae_lens.Transcoder(sae_lens.TranscoderConfig(d_in=D_IN, d_sae=D_SAE, d_out=24,
                                                             apply_b_dec_to_input=False, metadata=meta))
    else:
        lens = sae_lens.JumpReLUTranscoder(sae_lens.JumpReLUTranscoderConfig(
            d_in=D_IN, d_sae=D_SAE, d_out=24, apply_b_dec_to_input=False, metadata=meta))
    _randomise(lens, 4)
    lens.save_model(tmp_path)
    sae = pw.SAE.load(str(tmp_path))
    c = sae.cfg
    assert (c.kind, c.arch, c.d_out) == ("transcoder", "relu" if arch == "transcoder" else "jumprelu", 24)
    assert (c.hook, c.hook_out) == ("blocks.1.ln2.hook_normalized", "blocks.1.hook_mlp_out")
    _same_maps(sae, lens)


@pytest.mark.parametrize("arch", ["abstopk", "skip_transcoder", "matching_pursuit"])
def test_sae_lens_architectures_we_lack_are_refused(tmp_path, arch):
    if arch == "abstopk":
        cfg = sae_lens.AbsTopKSAEConfig(d_in=D_IN, d_sae=D_SAE, k=K)
        lens = sae_lens.AbsTopKSAE(cfg)
    elif arch == "skip_transcoder":
        cfg = sae_lens.SkipTranscoderConfig(d_in=D_IN, d_sae=D_SAE, d_out=D_IN, apply_b_dec_to_input=False)
        lens = sae_lens.SkipTranscoder(cfg)
    else:
        cfg = sae_lens.MatchingPursuitSAEConfig(d_in=D_IN, d_sae=D_SAE)
        lens = sae_lens.MatchingPursuitSAE(cfg)
    lens.save_model(tmp_path)
    with pytest.raises(ValueError, match=rf"architecture '{arch}' is not supported; prisma_widgets reads standard"):
        pw.SAE.load(str(tmp_path))


# --------------------------------------------------------------------------------------------------
# prisma_widgets -> SAE-Lens
# --------------------------------------------------------------------------------------------------
def _our_sae(arch: str, hook: str | None = HOOK, seed: int = 5, **kind) -> pw.SAE:
    sae = pw.SAE(d_in=D_IN, d_sae=D_SAE, arch=arch, k=K if arch in ("topk", "batchtopk") else None, hook=hook,
                 model="m" if hook else None, **kind)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sae.named_parameters():
            p.copy_(torch.randn(p.shape, generator=g) * (0.3 if name in ("r_mag", "threshold") else 1.0))
            if name == "threshold":
                p.abs_()
        if arch in ("topk", "batchtopk"):
            sae.normalize_decoder()  # training keeps TopK decoder rows at unit norm
        if arch == "batchtopk":
            sae.threshold.fill_(0.8)
    return sae


OURS_TO_LENS = [("relu", "standard"), ("topk", "topk"), ("batchtopk", "jumprelu"), ("jumprelu", "jumprelu"),
                ("gated", "gated")]


@pytest.mark.parametrize("arch,lens_arch", OURS_TO_LENS, ids=[a for a, _ in OURS_TO_LENS])
def test_our_files_load_in_sae_lens_and_compute_the_same(tmp_path, arch, lens_arch):
    assert arch in ARCHS
    ours = _our_sae(arch)
    ours.save(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"] == lens_arch and cfg["metadata"]["hook_name"] == HOOK
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lens = sae_lens.SAE.load_from_disk(str(tmp_path))
    assert type(lens).__name__ == {"standard": "StandardSAE", "topk": "TopKSAE", "jumprelu": "JumpReLUSAE",
                                   "gated": "GatedSAE"}[lens_arch]
    assert lens.cfg.metadata.hook_name == HOOK
    _same_maps(ours, lens)
    back = pw.SAE.load(str(tmp_path))  # and ours read back as it was, BatchTopK included
    assert back.cfg.arch == arch
    close(back(_x()), ours(_x()))


def test_an_sae_without_a_hook_writes_no_null_and_sae_lens_reads_it(tmp_path):
    ours = _our_sae("topk", hook=None)
    ours.save(tmp_path)
    text = (tmp_path / "cfg.json").read_text()
    assert "null" not in text.split('"prisma_widgets"')[0]  # the SAE-Lens part holds no null
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lens = sae_lens.SAE.load_from_disk(str(tmp_path))
    assert lens.cfg.metadata.hook_name is None
    _same_maps(ours, lens)


def test_a_negative_batchtopk_threshold_has_no_jumprelu_form(tmp_path):
    ours = _our_sae("batchtopk")
    with torch.no_grad():
        ours.threshold.fill_(-0.5)
    with pytest.raises(ValueError, match=r"threshold is -0\.5 < 0.*>= 0"):
        ours.save(tmp_path)
    assert not (tmp_path / "cfg.json").exists()


TRANSCODER = {"kind": "transcoder", "d_out": 24, "hook_out": "blocks.1.hook_mlp_out"}


@pytest.mark.parametrize("arch", ["relu", "jumprelu", "batchtopk"])
def test_our_transcoders_load_in_sae_lens_and_compute_the_same(tmp_path, arch):
    ours = _our_sae(arch, hook="blocks.1.ln2.hook_normalized", **TRANSCODER)
    ours.save(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        lens = sae_lens.SAE.load_from_disk(str(tmp_path))
    assert type(lens).__name__ == ("Transcoder" if arch == "relu" else "JumpReLUTranscoder")
    assert lens.cfg.d_out == 24 and lens.cfg.metadata.hook_name_out == "blocks.1.hook_mlp_out"
    _same_maps(ours, lens)
    back = pw.SAE.load(str(tmp_path))
    assert (back.cfg.kind, back.cfg.arch, back.cfg.hook_out) == ("transcoder", arch, "blocks.1.hook_mlp_out")


@pytest.mark.parametrize("what", ["topk-transcoder", "gated-transcoder", "crosscoder"])
def test_what_sae_lens_has_no_class_for_is_ours_only_and_named(tmp_path, what):
    """A TopK or Gated transcoder and a crosscoder: SAE-Lens has no such class; the file says so, ours reads it."""
    if what == "crosscoder":
        ours = _our_sae("topk", kind="crosscoder", n_layers=2, hooks=[HOOK, "blocks.2.hook_resid_post"])
    else:
        ours = _our_sae(what.split("-")[0], hook="blocks.1.ln2.hook_normalized", **TRANSCODER)
    ours.save(tmp_path)
    cfg = json.loads((tmp_path / "cfg.json").read_text())
    assert cfg["architecture"].startswith("prisma_widgets:")
    with pytest.raises(Exception, match=cfg["architecture"]):
        sae_lens.SAE.load_from_disk(str(tmp_path))
    back = pw.SAE.load(str(tmp_path))
    assert (back.cfg.kind, back.cfg.arch) == (ours.cfg.kind, ours.cfg.arch)
    x = torch.randn(5, ours.cfg.width_in, generator=torch.Generator().manual_seed(0))
    if what == "crosscoder":
        x = x.reshape(5, 2, D_IN)
    close(back(x), ours(x))


def test_an_sae_lens_sae_splices_into_a_model_as_ours_does(tiny, tmp_path):
    """run_with_saes takes SAE-Lens' own objects (hook from cfg.metadata), and they splice as the loaded copy."""
    cfg = sae_lens.TopKSAEConfig(d_in=tiny.cfg.d_model, d_sae=40, k=4, metadata=SAEMetadata(hook_name="blocks.0.hook_resid_post"))
    lens = sae_lens.TopKSAE(cfg)
    _randomise(lens, 6)
    lens.save_model(tmp_path)
    ours = pw.SAE.load(str(tmp_path))
    x = torch.randn(2, 3, *tiny.cfg.image_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        want = tiny.run_with_saes(x, saes=[ours], edits=[pw.FeatureEdit(3, "clamp", 2.0)])
        got = tiny.run_with_saes(x, saes=[lens], edits=[pw.FeatureEdit(3, "clamp", 2.0)])
    close(got, want)
    assert not torch.allclose(got, tiny(x))
