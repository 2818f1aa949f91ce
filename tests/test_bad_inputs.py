"""Bad inputs across the public API: numbers, NaN / inf, empty inputs, widths and top-k larger than what exists.

Each case asserts the exact error type, that the message names the problem, and that it names the fix. Cases that
must not touch the disk also check that the destination was never created. (Damaged files, read-only places and
full disks: tests/test_bad_files.py and tests/test_disk_full.py.)
"""

from __future__ import annotations

import functools
import re
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import traitlets

import prisma_widgets as pw
from prisma_widgets.analysis.attention import attention_rollout
from prisma_widgets.analysis.logit_lens import lens_statistics
from prisma_widgets.analysis.patching import run_patched
from prisma_widgets.files import DamagedFileError

HOOK = "blocks.1.hook_resid_post"


@pytest.fixture(scope="module")
def c(tmp_path_factory):
    torch.manual_seed(0)
    mv, mc = pw.load("mouse-vit"), pw.load("mouse-clip")
    imgs, _ = pw.zoo.shapes(6, seed=0)
    folder = tmp_path_factory.mktemp("bad_inputs")
    store = pw.cache_activations(mv, imgs, HOOK, folder / "store", tokens="patches", progress=False)
    nan_image = imgs[0].astype(np.float32) / 255
    nan_image[3, 5, 1] = np.nan
    inf_image = imgs[0].astype(np.float32) / 255
    inf_image[0, 2, 0] = np.inf
    x = torch.randn(300, 16, generator=torch.Generator().manual_seed(0))
    nan_x = x.clone()
    nan_x[7, 3] = float("nan")
    inf_x = x.clone()
    inf_x[9, 1] = float("inf")
    sae = pw.SAE(d_in=128, d_sae=64, k=4, hook="blocks.3.hook_resid_post")
    narrow = pw.SAE(d_in=100, d_sae=32, k=4, hook="blocks.3.hook_resid_post")
    counter = iter(range(10**6))
    return SimpleNamespace(mv=mv, mc=mc, imgs=imgs, store=store, nan_image=nan_image, inf_image=inf_image, x=x,
                           nan_x=nan_x, inf_x=inf_x, sae=sae, narrow=narrow,
                           fresh=lambda: folder / f"never-made-{next(counter)}")


def cache(c, path, **kw):
    return pw.cache_activations(c.mv, kw.pop("images", c.imgs), kw.pop("hook", HOOK), path, progress=False, **kw)


def train(c, **kw):
    return pw.train_sae(kw.pop("data", c.x), **{"steps": 2, "batch_size": 64, "progress": False, **kw})


@functools.lru_cache(maxsize=1)
def video_model() -> pw.HookedViT:
    import transformers

    torch.manual_seed(0)
    config = transformers.VideoMAEConfig(image_size=32, patch_size=16, num_frames=4, tubelet_size=2, hidden_size=16,
                                         num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    return pw.HookedViT(transformers.VideoMAEForVideoClassification(config).eval())


# id: (call, error type, the problem, the fix); "disk" cases also check that no folder was made
CASES = {
    # ---- video models
    "video model(an image)": (lambda c, p: video_model()(np.zeros((32, 32, 3), np.uint8)), ValueError,
                              r"cannot read a clip from an array of shape \[32, 32, 3\]", r"\[frames, H, W, 3\]"),
    "video model(clips with 3 frames)": (lambda c, p: video_model()(torch.zeros(1, 3, 3, 32, 32)), ValueError,
                                         r"got \[1, 3, 3, 32, 32\]", r"\[batch, 4, 3, 32, 32\]"),
    "video model('<missing file>')": (lambda c, p: video_model()(str(p)), FileNotFoundError, r"no video file at .*never-made",
                                      r"or the frames as an array"),
    # ---- cache_activations: every number checked before a file is made
    "cache batch_size=0": (lambda c, p: cache(c, p, batch_size=0), ValueError,
                           r"batch_size must be an integer >= 1; got 0", r"Pass e\.g\. batch_size=32"),
    "cache batch_size=-4": (lambda c, p: cache(c, p, batch_size=-4), ValueError,
                            r"batch_size must be an integer >= 1; got -4", r"batch_size=32"),
    "cache batch_size=2.5": (lambda c, p: cache(c, p, batch_size=2.5), ValueError, r"got 2\.5", r"batch_size=32"),
    "cache batch_size='8'": (lambda c, p: cache(c, p, batch_size="8"), TypeError, r"got '8' \(str\)", r"batch_size=32"),
    "cache batch_size=True": (lambda c, p: cache(c, p, batch_size=True), TypeError, r"got True \(bool\)", r"Pass e\.g\."),
    "cache dtype=float64": (lambda c, p: cache(c, p, dtype="float64"), ValueError, r"dtype must be one of",
                            r"'float16', 'float32'; got 'float64'"),
    "cache tokens=patch": (lambda c, p: cache(c, p, tokens="patch"), ValueError, r"tokens must be one of",
                           r"'all', 'patches', 'cls'"),
    "cache hook=3": (lambda c, p: cache(c, p, hook=3), TypeError, r"hook must be a hook name",
                     r"such as 'blocks\.3\.hook_resid_post'"),
    "cache path=123": (lambda c, p: pw.cache_activations(c.mv, c.imgs, HOOK, 123), TypeError,
                       r"path must be a folder path", r"str or pathlib\.Path"),
    "cache overwrite='yes'": (lambda c, p: cache(c, p, overwrite="yes"), TypeError, r"overwrite must be True or False",
                             r"got 'yes'"),
    "cache_activations into a file": (lambda c, p: (p.write_text("x"), cache(c, p)), NotADirectoryError,
                                      r"is a file; an activation cache is a folder", r"choose another path"),
    "cache images=[]": (lambda c, p: cache(c, p, images=[]), ValueError, r"got no images", r"pass at least one"),
    "cache images [0,H,W,3]": (lambda c, p: cache(c, p, images=np.zeros((0, 64, 64, 3), np.uint8)), ValueError,
                               r"got no images", r"pass at least one"),
    "cache NaN image": (lambda c, p: cache(c, p, images=[c.nan_image]), ValueError,
                        r"1 non-finite value \(1 NaN, 0 inf\), the first at index \(3, 5, 1\)", r"np\.nan_to_num"),
    # ---- train_sae
    "train batch_size=0": (lambda c, p: train(c, batch_size=0), ValueError, r"batch_size must be an integer >= 1",
                           r"batch_size=4096"),
    "train lr=0": (lambda c, p: train(c, lr=0), ValueError, r"lr must be a finite number > 0; got 0", r"lr=None"),
    "train lr<0": (lambda c, p: train(c, lr=-1e-3), ValueError, r"lr must be a finite number > 0; got -0\.001",
                   r"lr=0\.0003"),
    "train lr=nan": (lambda c, p: train(c, lr=float("nan")), ValueError, r"finite number > 0; got nan", r"lr=0\.0003"),
    "train lr=inf": (lambda c, p: train(c, lr=float("inf")), ValueError, r"got inf", r"lr=0\.0003"),
    "train steps=-5": (lambda c, p: train(c, steps=-5), ValueError, r"steps must be an integer >= 1; got -5",
                       r"steps=None"),
    "train steps=0": (lambda c, p: train(c, steps=0), ValueError, r"steps must be an integer >= 1; got 0", r"steps >= 1"),
    "train steps='100'": (lambda c, p: train(c, steps="100"), TypeError, r"steps must be an integer", r"steps=None"),
    "train expansion=0": (lambda c, p: train(c, expansion=0), ValueError, r"expansion must be an integer >= 1",
                          r"expansion=16"),
    "train k=0": (lambda c, p: train(c, k=0), ValueError, r"k must be an integer >= 1; got 0", r"k=32"),
    "train k>d_sae": (lambda c, p: train(c, k=100, expansion=2), ValueError, r"k=100 is larger than the SAE width "
                      r"d_sae=32", r"pass k <= 32, or a larger expansion"),
    "train aux_k>d_sae": (lambda c, p: train(c, aux_k=999, expansion=2, k=4), ValueError, r"aux_k=999 is larger",
                          r"pass aux_k <= 32"),
    "train log_every=0": (lambda c, p: train(c, log_every=0), ValueError, r"log_every must be an integer >= 1",
                          r"log_every=50"),
    "train tokens=-1": (lambda c, p: train(c, steps=None, tokens=-1), ValueError, r"tokens must be an integer >= 1",
                        r"number of rows to train on"),
    "train seed=-1": (lambda c, p: train(c, seed=-1), ValueError, r"seed must be an integer >= 0", r"seed=0"),
    "train lr_decay=2": (lambda c, p: train(c, lr_decay=2), ValueError, r"lr_decay must be a finite number >= 0 and "
                         r"<= 1; got 2", r"lr_decay=0\.2"),
    "train l1=-1": (lambda c, p: train(c, arch="relu", l1=-1), ValueError, r"l1 must be a finite number >= 0",
                    r"l1=0\.05"),
    "train aux_coef=nan": (lambda c, p: train(c, aux_coef=float("nan")), ValueError, r"aux_coef must be a finite",
                           r"aux_coef=0\.03125"),
    "train arch=matryoshka": (lambda c, p: train(c, arch="matryoshka"), ValueError, r"arch must be one of", r"'topk'"),
    "train b_dec_init=zero": (lambda c, p: train(c, b_dec_init="zero"), ValueError, r"b_dec_init must be one of",
                              r"'mean', 'median'"),
    "train chunk_rows=0": (lambda c, p: train(c, chunk_rows=0), ValueError, r"chunk_rows must be an integer >= 1",
                           r"chunk_rows=262144"),
    "train checkpoint_every=-1": (lambda c, p: train(c, checkpoint_every=-1), ValueError,
                                  r"checkpoint_every must be an integer >= 0", r"checkpoint_every=1000"),
    "train dead_after_tokens=0": (lambda c, p: train(c, dead_after_tokens=0), ValueError,
                                  r"dead_after_tokens must be an integer >= 1", r"dead_after_tokens="),
    "train callback=5": (lambda c, p: train(c, callback=5), TypeError, r"callback must be a function",
                         r"callback\(step, sae, metrics\)"),
    "train device=tpu": (lambda c, p: train(c, device="tpu:0"), ValueError, r"device must be", r"'cpu', 'cuda'"),
    "train device=cuda:99": (lambda c, p: train(c, device="cuda:99"), ValueError, r"device='cuda:99' but torch sees",
                             r"device='cpu'|an index below"),
    "train NaN data": (lambda c, p: train(c, data=c.nan_x), ValueError,
                       r"training data holds 1 non-finite value \(1 NaN, 0 inf\), the first at index \(7, 3\)",
                       r"drop those rows"),
    "train inf data": (lambda c, p: train(c, data=c.inf_x), ValueError, r"\(0 NaN, 1 inf\), the first at index \(9, 1\)",
                       r"drop those rows"),
    "train empty data": (lambda c, p: train(c, data=torch.zeros(0, 16)), ValueError, r"got no data: the tensor is "
                         r"\[0, 16\]", r"at least one row"),
    "train 1-D data": (lambda c, p: train(c, data=torch.zeros(16)), TypeError, r"got Tensor\[16\]",
                       r"pw\.cache_activations|shaped \[rows, d\]"),
    "train checkpoint_dir=file": (lambda c, p: (p.write_text("x"), train(c, checkpoint_dir=p / "run")), NotADirectoryError,
                                  r"part of that path is a file", r"Choose another path"),
    # ---- the SAE, its config, evaluate
    "SAE d_in=0": (lambda c, p: pw.SAE(d_in=0, d_sae=8, k=1), ValueError, r"d_in must be an integer >= 1; got 0",
                   r"d_in=768"),
    "SAE d_sae=-3": (lambda c, p: pw.SAE(d_in=4, d_sae=-3, k=1), ValueError, r"d_sae must be an integer >= 1",
                     r"d_sae=16384"),
    "SAE k>d_sae": (lambda c, p: pw.SAE(d_in=4, d_sae=8, k=9), ValueError, r"k=9 is larger than the SAE width d_sae=8",
                    r"pass k <= 8"),
    "SAE d_in='128'": (lambda c, p: pw.SAE(d_in="128", d_sae=8, k=1), TypeError, r"d_in must be an integer",
                       r"d_in=768"),
    "sae.encode wrong width": (lambda c, p: c.sae.encode(torch.randn(3, 100)), ValueError,
                               r"reads 128-wide activations \(d_in=128\), but got activations of shape \[3, 100\]",
                               r"'blocks\.3\.hook_resid_post'\), \[\.\.\., 128\]"),
    "evaluate wrong width": (lambda c, p: c.sae.evaluate(torch.randn(10, 100)), ValueError, r"shape \[10, 100\]",
                             r"\[\.\.\., 128\]"),
    "evaluate store wrong hook": (lambda c, p: pw.SAE(d_in=96, d_sae=8, k=2).evaluate(c.store), ValueError,
                                  r"reads 96-wide activations.*holds 128-wide rows", r"cache of the hook it was trained"),
    "evaluate batch_size=0": (lambda c, p: c.sae.evaluate(torch.randn(10, 128), batch_size=0), ValueError,
                              r"batch_size must be an integer >= 1", r"batch_size=4096"),
    "evaluate dense_threshold=2": (lambda c, p: c.sae.evaluate(torch.randn(10, 128), dense_threshold=2), ValueError,
                                   r"dense_threshold must be a finite number >= 0 and <= 1", r"dense_threshold=0\.1"),
    "evaluate NaN rows": (lambda c, p: c.sae.evaluate(torch.full((4, 128), float("nan"))), ValueError,
                          r"holds 512 non-finite values", r"drop those rows"),
    "evaluate labels out of range": (lambda c, p: c.sae.evaluate(torch.randn(10, 128), model=c.mv, images=c.imgs,
                                                                 labels=[0, 1, 2, 3, 4, 99]), ValueError,
                                     r"labels must be class indices in \[0, 8\); got values from 0 to 99",
                                     r"class indices in"),
    "evaluate model without images": (lambda c, p: c.sae.evaluate(torch.randn(10, 128), model=c.mv), ValueError,
                                      r"needs both model=\.\.\. and images=\.\.\.", r"\(or neither\)"),
    # ---- feature statistics and the gallery
    "FeatureGallery SAE width != hook": (lambda c, p: pw.FeatureGallery(c.mv, c.narrow, c.imgs), ValueError,
                                         r"reads 100-wide activations \(d_in=100\), but 'blocks\.3\.hook_resid_post' "
                                         r"of mouse-vit is 128 wide", r"Use an SAE trained on this hook and model"),
    "feature_stats top_k=0": (lambda c, p: pw.feature_stats(c.mv, c.sae, c.imgs, top_k=0), ValueError,
                              r"top_k must be an integer >= 1; got 0", r"top_k=8"),
    "feature_stats n_samples=-1": (lambda c, p: pw.feature_stats(c.mv, c.sae, c.imgs, n_samples=-1), ValueError,
                                   r"n_samples must be an integer >= 1", r"n_samples=16"),
    "feature_stats batch_size=0": (lambda c, p: pw.feature_stats(c.mv, c.sae, c.imgs, batch_size=0), ValueError,
                                   r"batch_size must be an integer >= 1", r"batch_size=64"),
    "feature_stats seed=1.5": (lambda c, p: pw.feature_stats(c.mv, c.sae, c.imgs, seed=1.5), ValueError,
                               r"seed must be an integer", r"seed=0"),
    "feature_stats not an SAE": (lambda c, p: pw.feature_stats(c.mv, torch.nn.Linear(128, 8), c.imgs), TypeError,
                                 r"sae must be a pw\.SAE", r"pw\.SAE\.load or trained with pw\.train_sae"),
    "feature_stats prompts='cat'": (lambda c, p: pw.feature_stats(c.mc, pw.SAE(d_in=128, d_sae=8, k=2), c.imgs,
                                                                  hook="blocks.3.hook_resid_post", prompts="a cat"),
                                    TypeError, r"prompts must be a list of strings", r"prompts=\["),
    "FeatureGallery top_k=0": (lambda c, p: pw.FeatureGallery(c.mv, c.sae, c.imgs, top_k=0), ValueError,
                               r"top_k must be an integer >= 1", r"top_k=8"),
    # ---- images handed to the model
    "NaN float image": (lambda c, p: c.mv(c.nan_image), ValueError, r"float image of shape \[64, 64, 3\] holds 1 "
                        r"non-finite value \(1 NaN, 0 inf\), the first at index \(3, 5, 1\)", r"np\.nan_to_num"),
    "inf float image": (lambda c, p: c.mv([c.imgs[1], c.inf_image]), ValueError, r"\(0 NaN, 1 inf\)", r"nan_to_num"),
    "NaN pixel tensor": (lambda c, p: c.mv(torch.full((1, 3, 64, 64), float("nan"))), ValueError,
                         r"preprocessed batch \[1, 3, 64, 64\].*holds 12288 non-finite values", r"torch\.nan_to_num"),
    "empty batch [0,H,W,3]": (lambda c, p: c.mv(np.zeros((0, 64, 64, 3), np.uint8)), ValueError,
                              r"empty batch of images \(shape \[0, 64, 64, 3\]\)", r"pass at least one image"),
    "empty list": (lambda c, p: c.mv.run_with_cache([]), ValueError, r"got an empty list of images",
                   r"pass at least one: PIL images"),
    "empty pixel tensor": (lambda c, p: c.mv(torch.zeros(0, 3, 64, 64)), ValueError, r"got an empty batch",
                           r"pass at least one image"),
    "zero-size image": (lambda c, p: c.mv(np.zeros((0, 0, 3), np.uint8)), ValueError, r"this image is empty",
                        r"at least 1 x 1 pixels"),
    "model.preprocess NaN": (lambda c, p: c.mv.preprocess([c.imgs[0], c.nan_image]), ValueError, r"1 NaN",
                             r"np\.nan_to_num"),
    # ---- widgets and analyses: top-k, k, layers, empties
    "PatchingHeatmap top_k=0": (lambda c, p: pw.PatchingHeatmap(c.mv, c.imgs[0], c.imgs[1], top_k=0), ValueError,
                                r"top_k must be an integer >= 1; got 0", r"top_k=5"),
    "PatchingHeatmap labels vs prompts": (lambda c, p: pw.PatchingHeatmap(c.mc, c.imgs[0], c.imgs[1],
                                          prompts=["a circle", "a square"], labels=["a", "b", "c"]), ValueError,
                                          r"3 labels for 2 prompts", r"one label per prompt"),
    "PatchingHeatmap max_precomputed_cells=-1": (lambda c, p: pw.PatchingHeatmap(c.mv, c.imgs[0], c.imgs[1],
                                                 max_precomputed_cells=-1), ValueError,
                                                 r"max_precomputed_cells must be an integer >= 0",
                                                 r"max_precomputed_cells=4096"),
    "PatchingHeatmap prompts=[]": (lambda c, p: pw.PatchingHeatmap(c.mc, c.imgs[0], c.imgs[1], prompts=[""]),
                                   ValueError, r"prompts\[0\] must be a non-empty string", r"prompts=\["),
    "LogitLens top_k=0": (lambda c, p: pw.LogitLens(c.mv, c.imgs[0], top_k=0), ValueError,
                          r"top_k must be an integer >= 1", r"top_k=5"),
    "LogitLens max_classes=0": (lambda c, p: pw.LogitLens(c.mv, c.imgs[0], max_classes=0), ValueError,
                                r"max_classes must be an integer >= 1", r"max_classes=48"),
    "LogitLens.from_arrays NaN": (lambda c, p: pw.LogitLens.from_arrays(np.full((2, 5, 3), np.nan)), ValueError,
                                  r"the logits \[layer, token, class\] holds 30 non-finite", r"finite logits"),
    "logit_lens top_k=-1": (lambda c, p: pw.analysis.logit_lens(c.mv, c.imgs[0], top_k=-1), ValueError,
                            r"top_k must be an integer >= 1; got -1", r"top_k=5"),
    "logit_lens layers=[]": (lambda c, p: pw.analysis.logit_lens(c.mv, c.imgs[0], layers=[]), ValueError,
                             r"layers is empty", r"layers=None for all"),
    "logit_lens layers=['1']": (lambda c, p: pw.analysis.logit_lens(c.mv, c.imgs[0], layers=["1"]), TypeError,
                                r"a layer is an integer index in 0\.\.3", r"-1 for the last"),
    "lens_statistics top_k=0": (lambda c, p: lens_statistics(np.zeros((2, 1, 3)), top_k=0), ValueError,
                                r"top_k must be an integer >= 1", r"top_k=5"),
    "AttentionGrid layers=[]": (lambda c, p: pw.AttentionGrid(c.mv, c.imgs[0], layers=[]), ValueError,
                                r"layers is empty", r"layers=None for all"),
    "AttentionGrid heads=[]": (lambda c, p: pw.AttentionGrid(c.mv, c.imgs[0], heads=[]), ValueError,
                               r"heads is empty", r"None for all"),
    "attention_rollout residual=2": (lambda c, p: attention_rollout(np.full((2, 1, 3, 3), 1 / 3), residual=2),
                                     ValueError, r"residual must be a finite number >= 0 and <= 1; got 2",
                                     r"residual=0\.5"),
    "attention_rollout NaN": (lambda c, p: attention_rollout(np.full((2, 1, 3, 3), np.nan)), ValueError,
                              r"attention patterns holds 18 non-finite", r"check the model"),
    "patch memory_budget=0": (lambda c, p: pw.analysis.patch(c.mv, c.imgs[0], c.imgs[1], memory_budget=0,
                                                             progress=False), ValueError,
                              r"memory_budget must be an integer >= 1", r"memory_budget=134217728"),
    "patch layers=[]": (lambda c, p: pw.analysis.patch(c.mv, c.imgs[0], c.imgs[1], layers=[], progress=False),
                        ValueError, r"layers is empty", r"layers=None for all"),
    "patch NaN metric": (lambda c, p: pw.analysis.patch(c.mv, c.imgs[0], c.imgs[1], progress=False,
                                                        metric=lambda out: out.sum() * float("nan")), ValueError,
                         r"the metric is not finite", r"returns a finite number"),
    "run_patched direction": (lambda c, p: run_patched(c.mv, c.imgs[0], c.imgs[1], "resid_pre", "position", 0,
                                                       direction="sideways"), ValueError,
                              r"direction must be 'denoise' or 'noise'; got 'sideways'", r"'denoise' or 'noise'"),
    "run_patched cell=-1": (lambda c, p: run_patched(c.mv, c.imgs[0], c.imgs[1], "resid_pre", "position", 0, cell=-1),
                            ValueError, r"cell must be an integer >= 0; got -1", r"cell=0"),
    "corrupt seed=-1": (lambda c, p: pw.corrupt(c.imgs[0], [1], mode="noise", model=c.mv, seed=-1), ValueError,
                        r"seed must be an integer >= 0", r"seed=0"),
    "zoo.shapes n=-1": (lambda c, p: pw.zoo.shapes(-1), ValueError, r"n must be an integer >= 0; got -1", r"n=16"),
    "zoo.shapes size=4": (lambda c, p: pw.zoo.shapes(2, size=4), ValueError, r"size must be an integer >= 8; got 4",
                          r"at least 8 pixels"),
    "zoo.scenes max_objects=12": (lambda c, p: pw.zoo.scenes(2, max_objects=12), ValueError,
                                  r"max_objects must be an integer >= 2 and <= 9; got 12", r"3x3 layout"),
    "zoo.moving_shapes frames=1": (lambda c, p: pw.zoo.moving_shapes(2, frames=1), ValueError,
                                   r"frames must be an integer >= 2 and <= 64; got 1", r"frames=8"),
    "zoo.moving_shapes size=8": (lambda c, p: pw.zoo.moving_shapes(2, size=8), ValueError,
                                 r"size must be an integer >= 16; got 8", r"at least 16 pixels"),
    # ---- the activation store
    "store.read past the end": (lambda c, p: c.store.read(0, 10**6), ValueError,
                                r"stop must be an integer >= 0 and <= 384; got 1000000", r"rows 0\.\.384"),
    "store.iter_batches batch_size=0": (lambda c, p: next(c.store.iter_batches(batch_size=0)), ValueError,
                                        r"batch_size must be an integer >= 1", r"batch_size=4096"),
    "store.row_to_image out of range": (lambda c, p: c.store.row_to_image([5, 10**6]), IndexError,
                                        r"row 1000000 is out of range", r"holds rows 0\.\.383"),
    # ---- neighbours: hooks, layers, devices, prompts, patches, look-ups, traits
    "cache a pattern hook": (lambda c, p: cache(c, p, hook="blocks.0.attn.hook_pattern"), ValueError,
                             r"gives activations of shape \[1, 4, 65, 65\]; this needs a per-token hook",
                             r"such as 'blocks\.0\.hook_resid_post'"),
    "stop_at_layer='2'": (lambda c, p: c.mv(c.imgs[0], stop_at_layer="2"), TypeError,
                          r"stop_at_layer must be an integer or None; got '2'", r"block index in 0\.\.4"),
    "stop_at_layer=9": (lambda c, p: c.mv.run_with_cache(c.imgs[0], stop_at_layer=9), ValueError,
                        r"need 0 <= start_at_layer <= stop_at_layer <= 4; got None, 9", r"<= 4"),
    "pw.load device=cuda:7": (lambda c, p: pw.load("mouse-vit", device="cuda:7"), ValueError,
                              r"device='cuda:7' but torch sees", r"device='cpu'|an index below"),
    "SAE.load device=cuda:7": (lambda c, p: pw.SAE.load(c.store.path, device="cuda:7"), ValueError,
                               r"device='cuda:7' but torch sees", r"device='cpu'|an index below"),
    "LogitLens prompts='a cat'": (lambda c, p: pw.LogitLens(c.mc, c.imgs[0], prompts="a photo of a cat"), TypeError,
                                  r"prompts must be a list of strings; got 'a photo of a cat'", r"prompts=\["),
    "LogitLens layers=[]": (lambda c, p: pw.LogitLens(c.mv, c.imgs[0], layers=[]), ValueError, r"layers is empty",
                            r"layers=None for all"),
    "corrupt patches=['a']": (lambda c, p: pw.corrupt(c.imgs[0], ["a"], model=c.mv), TypeError,
                              r"got 'a' in them", r"flat patch indices, \(row, col\) pairs or a boolean"),
    "gallery active_features n=0": (lambda c, p: pw.FeatureGallery(c.mv, c.sae, c.imgs).active_features([0], n=0),
                                    ValueError, r"n must be an integer >= 1; got 0", r"n=8"),
    "gallery active_features image 99": (lambda c, p: pw.FeatureGallery(c.mv, c.sae, c.imgs).active_features([99]),
                                         ValueError, r"must be an integer >= 0 and <= 5; got 99",
                                         r"indices of the gallery's images, 0\.\.5"),
    "gallery opacity=5": (lambda c, p: pw.FeatureGallery(c.mv, c.sae, c.imgs, opacity=5), traitlets.TraitError,
                          r"'opacity' trait .* should not be greater than 1\.0", r"a value of 5"),
    "quantile_groups n_groups=0": (lambda c, p: pw.feature_stats(c.mv, c.sae, c.imgs).quantile_groups(0, n_groups=0),
                                   ValueError, r"n_groups must be an integer >= 1", r"n_groups=4"),
    "class_effect_extremes k=-1": (lambda c, p: pw.feature_stats(c.mv, c.sae, c.imgs).class_effect_extremes(0, k=-1),
                                   ValueError, r"k must be an integer >= 1; got -1", r"k=5"),
    "PatchingHeatmap.from_result(None)": (lambda c, p: pw.PatchingHeatmap.from_result(None), TypeError,
                                          r"result must be a PatchingResult", r"pw\.analysis\.patch"),
    "ActivationStore(123)": (lambda c, p: pw.ActivationStore(123), TypeError, r"path must be the folder of an "
                             r"activation cache", r"str or pathlib\.Path"),
    "ActivationStore(empty folder)": (lambda c, p: (p.mkdir(), pw.ActivationStore(p)), FileNotFoundError,
                                      r"no activation cache at .*no manifest\.json", r"make one with pw\.cache"),
    "store.images(99)": (lambda c, p: c.store.images([99]), IndexError, r"image index 99 out of range for 6",
                         r"pass indices 0\.\.5"),
    "sae.encode int tensor": (lambda c, p: c.sae.encode(torch.zeros(2, 128, dtype=torch.long)), TypeError,
                              r"an SAE reads float activations; got a torch\.int64", r"x\.float\(\)"),
    "model.labels wrong length": (lambda c, p: setattr(c.mv, "labels", ["a"]), ValueError,
                                  r"this head has 8 classes; got 1 labels", r"one name per class"),
    "unreadable image file": (lambda c, p: (p.write_bytes(b"\x89PNG garbage"), c.mv(str(p))), DamagedFileError,
                              r"cannot read .* as an image .*damaged or not an image", r"readable PNG / JPEG"),
    # ---- the text tower (image-text models): prompts and token ids, before any block runs
    "run_text_with_cache('')": (lambda c, p: c.mc.run_text_with_cache(""), ValueError,
                                r"prompts\[0\] must be a non-empty string; got ''", r"prompts=\['a photo of a cat'"),
    "encode_text([])": (lambda c, p: c.mc.encode_text([]), ValueError, r"prompts is empty", r"Pass at least one"),
    "run_text_with_hooks(None)": (lambda c, p: c.mc.run_text_with_hooks(None), TypeError,
                                  r"prompts must be a list of strings; got None", r"prompts=\['a photo of a cat'"),
    "encode_text([1, 2])": (lambda c, p: c.mc.encode_text([1, 2]), ValueError, r"prompts\[0\] must be a non-empty "
                            r"string; got 1", r"Pass e\.g\."),
    "text tokens float": (lambda c, p: c.mc.run_text_with_cache(torch.zeros(1, 32)), TypeError,
                          r"token ids must be integers \(torch\.long\); got torch\.float32", r"ids from model\.tokenizer"),
    "text tokens out of vocabulary": (lambda c, p: c.mc.encode_text(torch.full((1, 32), 10**5)), ValueError,
                                      r"token id 100000 is outside this text tower's vocabulary \(0 to 49407\)",
                                      r"Pass the prompts as strings"),
    "text tokens too short": (lambda c, p: c.mc.run_text_with_cache(torch.zeros(1, 5, dtype=torch.long)), ValueError,
                              r"takes exactly 32 tokens per prompt \(its position embedding\); got 5",
                              r"ids from model\.tokenizer"),
    "text tokens [0, ctx]": (lambda c, p: c.mc.encode_text(torch.zeros(0, 32, dtype=torch.long)), ValueError,
                             r"at least one prompt; got shape \[0, 32\]", r"Pass the prompts as strings"),
    # ---- direct logit attribution: targets, classes and switches checked before the model runs
    "dla target=1.5": (lambda c, p: pw.analysis.direct_logit_attribution(c.mv, c.imgs[:1], target=1.5), ValueError,
                       r"target must be an integer; got 1\.5", r"class index in 0\.\.7, or a class name"),
    "dla position_classes=[99]": (lambda c, p: pw.analysis.direct_logit_attribution(
        c.mv, c.imgs[:1], by_position=True, position_classes=[99]), ValueError,
        r"position_classes: class index 99 is out of range: there are 8 classes", r"class index in 0\.\.7"),
    "dla heads='yes'": (lambda c, p: pw.analysis.direct_logit_attribution(c.mv, c.imgs[:1], heads="yes"), TypeError,
                        r"heads must be True or False; got 'yes'", r"True or False"),
    "dla prompts='a circle'": (lambda c, p: pw.analysis.direct_logit_attribution(c.mc, c.imgs[:1], prompts="a circle"),
                               TypeError, r"prompts must be a list of strings; got 'a circle'",
                               r"prompts=\['a photo of a cat'"),
    # ---- loading
    "pw.load('hf:<missing folder>')": (lambda c, p: pw.load(f"hf:{p}"), FileNotFoundError, r"no folder .*never-made",
                                        r"a Hub repository \('openai/clip-vit-base-patch32'\) or a model folder"),
    "pw.load('hf:<a file>')": (lambda c, p: (p.write_text("{}"), pw.load(f"hf:{p}")), NotADirectoryError,
                               r"is a file", r"pass the folder that holds it"),
    "pw.load('open_clip:<unknown>')": (lambda c, p: pw.load("open_clip:ViT-B-33"), ValueError,
                                       r"unknown open_clip model 'ViT-B-33'", r"open_clip:hf-hub:<user>/<repository>"),
    "pw.load(123)": (lambda c, p: pw.load(123), TypeError, r"name must be a model name", r"'mouse-vit'"),
    "pw.load fallback=5": (lambda c, p: pw.load("mouse-vit", fallback=5), TypeError, r"fallback must be a model name",
                           r"'mouse-vit'"),
    # ---- SAE files between libraries, splicing and steering
    "SAE.load('hf:repo')": (lambda c, p: pw.SAE.load("hf:repo"), ValueError, r"'hf:repo' is not a hub SAE name",
                            r"'hf:<owner>/<repo>/<folder>'"),
    "SAE.load(3)": (lambda c, p: pw.SAE.load(3), TypeError, r"path must be a folder.*got a int", r"'hf:<repo>'"),
    "batchtopk save threshold<0": (lambda c, p: _negative(p), ValueError, r"threshold is -1 < 0", r"Set sae\.threshold to a value >= 0"),
    "FeatureEdit op='double'": (lambda c, p: pw.FeatureEdit(3, "double"), ValueError, r"op must be one of",
                                r"'zero', 'scale', 'clamp', 'add'"),
    "FeatureEdit value=nan": (lambda c, p: pw.FeatureEdit(3, "scale", float("nan")), ValueError,
                              r"value must be a finite number", r"scale, clamp level or amount to add"),
    "run_with_saes(saes=sae)": (lambda c, p: c.mv.run_with_saes(c.imgs[:1], saes=c.sae), TypeError,
                                r"saes must be a list of SAEs", r"saes=\[sae\]"),
    "steer feature=99": (lambda c, p: pw.steer(c.mv, c.imgs[:1], c.sae, 99), ValueError,
                         r"feature 99 does not exist", r"0\.\.63"),
    "gallery steer op='boost'": (lambda c, p: pw.FeatureGallery(c.mv, c.sae, c.imgs).steer(1, "boost"), ValueError,
                                 r"op must be one of", r"'zero', 'scale', 'clamp'"),
}


def _negative(path):
    sae = pw.SAE(d_in=8, d_sae=16, arch="batchtopk", k=2)
    with torch.no_grad():
        sae.threshold.fill_(-1)
    sae.save(path)

NO_FILES = [k for k in CASES if k.startswith("cache ")]


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gets_a_clear_error(c, case):
    call, kind, problem, fix = CASES[case]
    path = c.fresh()
    with pytest.raises(Exception) as info:
        call(c, path)
    assert info.type is kind, f"{case}: {info.type.__name__}: {info.value}"
    message = str(info.value)
    assert re.search(problem, message), f"{case}: the message does not name the problem: {message}"
    assert re.search(fix, message), f"{case}: the message does not name the fix: {message}"
    if case in NO_FILES:
        assert not path.exists(), f"{case}: a file was made before the input was refused"


def test_there_are_enough_cases():
    assert len(CASES) >= 60


# ---- the same classes on valid input: a top-k larger than what exists is not an error
def test_patching_heatmap_with_fewer_classes_than_top_k(c):
    clip = pw.PatchingHeatmap(c.mc, c.imgs[0], c.imgs[1], prompts=["a photo of a circle", "a photo of a square"])
    assert len(clip.clean_top["indices"]) == 2  # default top_k=5, two prompts
    table = np.asarray(clip.cell_predictions()["patched"])
    assert len(table) == 2 and sorted(r["index"] for r in table) == [0, 1]
    vit = pw.PatchingHeatmap(c.mv, c.imgs[0], c.imgs[1], top_k=10)  # 8 classes
    with torch.no_grad():
        probs = torch.softmax(c.mv(c.imgs[0]).float(), -1)[0].double().numpy()
    assert vit.clean_top["indices"] == np.argsort(-probs, kind="stable").tolist()
    np.testing.assert_allclose(vit.clean_top["probs"], np.sort(probs)[::-1], rtol=1e-5)


def test_top_k_larger_than_classes_elsewhere(c):
    lens = pw.LogitLens(c.mv, c.imgs[0], top_k=100)
    top_i, top_p = lens.top_values()
    assert top_i.shape[-1] == 8 and np.allclose(top_p.sum(-1), 1, atol=1e-2)
    result = pw.analysis.logit_lens(c.mv, c.imgs[0], top_k=50)
    assert result.top_k_indices.shape[-1] == 8
    stats = pw.feature_stats(c.mv, c.sae, c.imgs, top_k=20, n_samples=30)  # more than the 6 images
    assert stats.top_images.shape == (64, 20) and (stats.top_images[:, 6:] == -1).all()
