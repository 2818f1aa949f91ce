"""Retrain a bundled mouse from its seed and write its weights and model card.

    python -m prisma_widgets.zoo.train mouse-vit            # ~15 min on 2 CPU cores
    python -m prisma_widgets.zoo.train mouse-clip
    python -m prisma_widgets.zoo.train mouse-video          # ~8 min on one idle CPU thread
    python -m prisma_widgets.zoo.train mouse-vit --steps 50 --out /tmp/mice   # a quick smoke run elsewhere

Training data is generated on the fly, fresh every step, from seeds ``1_000_000 * (seed + 1) + 2 * step``
(single shapes) and ``... + 2 * step + 1`` (scenes); evaluation uses seeds below 1,000,000, so no evaluation
image was ever seen in training. Runs on CPU (or ``--device cuda``); the result depends on the seed, the
torch version and the number of threads only through floating-point summation order.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import evaluate, registry
from .shapes import SHAPE_CLASSES, scenes, shapes, shapes_with_captions, shapes_with_patches

EVAL_SHAPES_SEED = 7
EVAL_SCENES_SEED = 8
N_EVAL_SHAPES = 2000
N_EVAL_SCENES = 1000
DENSE_TEMPLATE = "a {}"

RECIPES = {
    "mouse-vit": dict(n_shapes=32, n_scenes=16, weight_decay=0.05, patch_weight=0.5, mimetic_init=True,
                      stages=[dict(steps=3000, lr=1e-3, warmup=100),
                              dict(steps=3000, lr=5e-4, warmup=50, n_shapes=48, n_scenes=16),
                              dict(steps=1500, lr=3e-4, warmup=50, n_shapes=48, n_scenes=32, patch_weight=1.0)]),
    "mouse-clip": dict(steps=500, n_shapes=32, n_scenes=32, lr=1e-3, visual_lr_scale=0.2, weight_decay=0.05,
                       warmup=50, patch_weight=1.0),
}


def data_seed(seed: int, step: int, scene: bool) -> int:
    return 1_000_000 * (seed + 1) + 2 * step + int(scene)


def _param_groups(model: torch.nn.Module, weight_decay: float, visual_lr_scale: float = 1.0):
    """AdamW groups: no decay on norms, biases, embeddings and tokens (the CLIP token table's unused rows must
    stay untouched); parameters under ``visual.`` (a warm-started CLIP vision tower) get ``visual_lr_scale``."""
    groups: dict[tuple[bool, bool], list] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = p.ndim < 2 or "pos" in name or "token" in name or "embedding" in name or "logit_scale" in name
        groups.setdefault((name.startswith("visual."), no_decay), []).append(p)
    return [dict(params=ps, weight_decay=0.0 if nd else weight_decay, lr_scale=visual_lr_scale if vis else 1.0)
            for (vis, nd), ps in groups.items()]


def _schedule(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


def _patch_ce(logits: torch.Tensor, patch_labels: np.ndarray) -> torch.Tensor:
    """Cross-entropy of per-patch class logits ``[n, P, C]`` on object patches only."""
    gt = torch.from_numpy(patch_labels).flatten(1).to(logits.device)
    obj = gt > 0
    return F.cross_entropy(logits[obj], gt[obj] - 1)


def _vit_stage(model, seed: int, recipe: dict, stage: dict, first_step: int, device: str, log) -> float:
    """One stage: a fresh AdamW, warm-up then cosine to 0 over ``stage["steps"]`` steps."""
    opt = torch.optim.AdamW(_param_groups(model, recipe["weight_decay"]), lr=stage["lr"], betas=(0.9, 0.99))
    steps = stage["steps"]
    t0 = time.time()
    for i in range(steps):
        step = first_step + i  # global step: picks the data seeds, so no two steps of any stage share data
        for g in opt.param_groups:
            g["lr"] = stage["lr"] * g["lr_scale"] * _schedule(i, steps, stage["warmup"])
        im1, lab1, pl1 = shapes_with_patches(stage.get("n_shapes", recipe["n_shapes"]),
                                             seed=data_seed(seed, step, False))
        sc = scenes(stage.get("n_scenes", recipe["n_scenes"]), seed=data_seed(seed, step, True))
        x = evaluate.to_pixels(np.concatenate([im1, sc.images])).to(device)
        feats = model.forward_features(x)
        n1 = len(im1)
        cls_logits = model.forward_head(feats[:n1])
        patch_logits = model.head(model.fc_norm(feats[:, model.num_prefix_tokens:]))
        loss_cls = F.cross_entropy(cls_logits, torch.as_tensor(lab1, device=device))
        loss_patch = _patch_ce(patch_logits, np.concatenate([pl1, sc.patch_labels]))
        loss = loss_cls + stage.get("patch_weight", recipe["patch_weight"]) * loss_patch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if i % 50 == 0 or i == steps - 1:
            acc = float((cls_logits.argmax(-1).cpu() == torch.as_tensor(lab1)).float().mean())
            log(f"step {i:5d}/{steps}  loss {loss.item():.3f} (cls {loss_cls.item():.3f}, patch "
                f"{loss_patch.item():.3f})  batch acc {acc:.3f}  {time.time() - t0:.0f}s")
    return time.time() - t0


def _round_fp16(model: torch.nn.Module) -> None:
    """What saving and reloading does: stages restart from float16-rounded weights (so a run can resume)."""
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.is_floating_point():
                t.copy_(t.half().float())


def _sincos_2d(rows: int, cols: int, dim: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine position table ``[rows*cols, dim]`` (a quarter of the channels per axis and phase)."""
    q = dim // 4
    omega = 1.0 / (10000 ** (torch.arange(q, dtype=torch.float32) / q))
    y, x = torch.meshgrid(torch.arange(rows, dtype=torch.float32), torch.arange(cols, dtype=torch.float32),
                          indexing="ij")
    ay, ax = y.flatten()[:, None] * omega, x.flatten()[:, None] * omega
    return torch.cat([ay.sin(), ay.cos(), ax.sin(), ax.cos()], 1)


@torch.no_grad()
def mimetic_init(model: torch.nn.Module, alpha: float = 0.7, beta: float = 0.7) -> None:
    """Mimetic initialisation (Trockman & Kolter, 2023) of a timm ViT, plus a 2-D sine-cosine start for the
    (still learned) position embedding.

    Per head, ``W_q^T W_k`` starts as the best rank-``d_head`` approximation of ``alpha Z + beta I`` and, per
    block, ``W_v^T W_o^T`` as ``alpha Z - beta I`` (``Z`` Gaussian with variance ``1/d``): attention starts out
    looking at similar tokens (with the sine-cosine positions: nearby patches), the structure that
    convolution-free ViTs otherwise need much data to find. Only the initial values change; the module is the
    plain timm ``VisionTransformer``.
    """
    d = model.embed_dim
    grid = model.patch_embed.grid_size
    model.pos_embed[0, model.num_prefix_tokens:] = _sincos_2d(grid[0], grid[1], d)
    eye = torch.eye(d)
    for block in model.blocks:
        attn = block.attn
        heads = attn.num_heads
        dh = d // heads
        w = attn.qkv.weight  # [3d, d]: q rows, k rows, v rows
        for h in range(heads):
            u, sv, vt = torch.linalg.svd(alpha * torch.randn(d, d) / d ** 0.5 + beta * eye)
            r = sv[:dh].sqrt()
            w[h * dh:(h + 1) * dh] = (u[:, :dh] * r).T  # W_q,h
            w[d + h * dh:d + (h + 1) * dh] = (vt[:dh].T * r).T  # W_k,h: W_q,h^T W_k,h = U S V^T (rank dh)
        u, sv, vt = torch.linalg.svd(alpha * torch.randn(d, d) / d ** 0.5 - beta * eye)
        r = sv.sqrt()
        w[2 * d:] = (u * r).T  # W_v
        attn.proj.weight.copy_((vt.T * r))  # W_o, so that W_v^T W_o^T = U S V^T
        attn.qkv.bias.zero_()
        attn.proj.bias.zero_()


def train_vit(seed: int, recipe: dict, device: str, log, from_stage: int = 1, init_from: Path | None = None,
              stage_dir: Path | None = None) -> tuple[torch.nn.Module, dict]:
    """Stages of warm-up + cosine AdamW; between stages the weights are rounded to float16 and the optimizer
    restarts (a warm restart), and each stage's result is written to ``stage_dir`` if given. ``from_stage`` k
    with ``init_from`` (stage k-1's file) resumes exactly where a full run would be."""
    torch.manual_seed(seed)
    model = registry.create("mouse-vit")
    if recipe.get("mimetic_init"):
        mimetic_init(model)
    if from_stage > 1:
        registry.load_into("mouse-vit", model, init_from)
        log(f"resuming at stage {from_stage} from {init_from}")
    model = model.to(device).train()
    seconds = []
    first = sum(st["steps"] for st in recipe["stages"][: from_stage - 1])
    for k, stage in enumerate(recipe["stages"], start=1):
        if k < from_stage:
            continue
        log(f"stage {k}: {stage}")
        seconds.append(_vit_stage(model, seed, recipe, stage, first, device, log))
        first += stage["steps"]
        _round_fp16(model)
        if stage_dir is not None and k < len(recipe["stages"]):
            registry.save("mouse-vit", model.cpu(), Path(stage_dir) / f"mouse-vit.stage{k}.safetensors",
                          metadata={"train_seconds": str(seconds[-1])})
            model.to(device)
    return model.eval(), {"train_seconds": sum(seconds), "stage_seconds": seconds}


def vit_to_clip_visual(vit_state: dict[str, torch.Tensor], visual: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Map mouse-vit's timm state onto open_clip's ``VisionTransformer`` (same blocks, ``no_ln_pre``).

    timm's patch-embedding bias (open_clip's ``conv1`` has none) is folded into the patch rows of the
    positional embedding; ``qkv`` -> ``in_proj``, ``proj`` -> ``out_proj``, ``fc1/fc2`` -> ``c_fc/c_proj``, final
    ``norm`` -> ``ln_post``. ``proj`` keeps its random init except its first 8 columns, which take the ViT's
    classifier weights, so the image embedding starts out carrying the class. The only numerical difference
    left is LayerNorm eps (1e-6 in timm, 1e-5 in open_clip).
    """
    out = {k: v.clone() for k, v in visual.state_dict().items()}
    pos = vit_state["pos_embed"][0].clone()
    pos[1:] += vit_state["patch_embed.proj.bias"]
    out["positional_embedding"] = pos
    out["class_embedding"] = vit_state["cls_token"][0, 0]
    out["conv1.weight"] = vit_state["patch_embed.proj.weight"]
    pairs = {"norm1": "ln_1", "attn.qkv.weight": "attn.in_proj_weight", "attn.qkv.bias": "attn.in_proj_bias",
             "attn.proj": "attn.out_proj", "norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj"}
    for key, value in vit_state.items():
        if key.startswith("blocks."):
            _, layer, rest = key.split(".", 2)
            for a, b in pairs.items():
                if rest.startswith(a):
                    rest = b + rest[len(a):]
                    break
            out[f"transformer.resblocks.{layer}.{rest}"] = value
    out["ln_post.weight"], out["ln_post.bias"] = vit_state["norm.weight"], vit_state["norm.bias"]
    head = vit_state["head.weight"]  # [classes, width]
    out["proj"][:, : head.shape[0]] = head.T / head.norm(dim=1).mean()
    missing = set(visual.state_dict()) - set(out)
    assert not missing, missing
    return {k: v.float() for k, v in out.items()}


def _contrastive(img: torch.Tensor, txt: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    logits = scale * img @ txt.T
    target = torch.arange(len(img), device=img.device)
    return 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))


def train_clip(seed: int, recipe: dict, device: str, log, init_from: Path | None = None
               ) -> tuple[torch.nn.Module, dict]:
    torch.manual_seed(seed)
    model = registry.create("mouse-clip")
    init_from = Path(init_from) if init_from is not None else registry.weights_path("mouse-vit")
    vit = registry.create("mouse-vit")
    registry.load_into("mouse-vit", vit, init_from)
    model.visual.load_state_dict(vit_to_clip_visual(vit.state_dict(), model.visual))
    log(f"vision tower initialised from {init_from}")
    model = model.to(device).train()
    tok = registry.tokenizer()
    opt = torch.optim.AdamW(_param_groups(model, recipe["weight_decay"], recipe["visual_lr_scale"]), lr=recipe["lr"],
                            betas=(0.9, 0.98))
    dense_tokens = tok([DENSE_TEMPLATE.format(c) for c in SHAPE_CLASSES]).to(device)
    prompt_tokens = tok([registry.PROMPT.format(c) for c in SHAPE_CLASSES])
    used: set[int] = set(prompt_tokens.unique().tolist()) | set(dense_tokens.unique().tolist())
    steps = recipe["steps"]
    v = model.visual
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = recipe["lr"] * g["lr_scale"] * _schedule(step, steps, recipe["warmup"])
        im1, _, pl1, cap1 = shapes_with_captions(recipe["n_shapes"], seed=data_seed(seed, step, False))
        sc = scenes(recipe["n_scenes"], seed=data_seed(seed, step, True))
        x = evaluate.to_pixels(np.concatenate([im1, sc.images])).to(device)
        tokens = tok(cap1 + sc.captions)
        used |= set(tokens.unique().tolist())
        h = v.transformer(v._embeds(x))
        pooled, patch_tokens = v._pool(h)
        img = F.normalize(pooled @ v.proj, dim=-1)
        txt = F.normalize(model.encode_text(tokens.to(device)), dim=-1)
        scale = model.logit_scale.exp().clamp(max=100)
        loss_con = _contrastive(img, txt, scale)
        cls_txt = F.normalize(model.encode_text(dense_tokens), dim=-1)
        patch_logits = scale * F.normalize(patch_tokens @ v.proj, dim=-1) @ cls_txt.T
        loss_patch = _patch_ce(patch_logits, np.concatenate([pl1, sc.patch_labels]))
        loss = loss_con + recipe["patch_weight"] * loss_patch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            log(f"step {step:5d}/{steps}  loss {loss.item():.3f} (contrastive {loss_con.item():.3f}, patch "
                f"{loss_patch.item():.3f})  scale {scale.item():.1f}  {time.time() - t0:.0f}s")
    return model.eval(), {"train_seconds": time.time() - t0, "used_tokens": sorted(used), "init_from": str(init_from)}


def measure(name: str, weights: Path) -> dict:
    """Numbers for the card, measured on the stored (float16) weights loaded back through ``build``."""
    model, meta = registry.build(name, weights=weights)
    tok = meta.get("tokenizer")
    images, labels = shapes(N_EVAL_SHAPES, seed=EVAL_SHAPES_SEED)
    acc = evaluate.accuracy(model, images, labels, tok)
    sc = scenes(N_EVAL_SCENES, seed=EVAL_SCENES_SEED)
    out = {"accuracy": acc, **evaluate.scene_metrics(model, sc, tok)}
    pred = evaluate.predict(model, images, tok)
    out["per_class_accuracy"] = {c: float((pred[np.asarray(labels) == k] == k).mean())
                                 for k, c in enumerate(SHAPE_CLASSES)}
    return out


CARD = """# {name}

{summary}

| | |
|---|---|
| architecture | {arch} |
| parameters | {params:,} ({stored}) |
| weights | `prisma_widgets/zoo/weights/{name}.safetensors`, {size_kb:.0f} KB, float16 safetensors{sparse} |
| input | 64 x 64 RGB, mean {mean}, std {std}, bilinear, no crop (the module's own data config) |
| token grid | 1 CLS token + 8 x 8 patches of 8 px |
| labels | {labels} |
| seed | {seed} |
| training time | {minutes:.1f} min on {hardware} ({threads} torch threads, shared machine) |
| torch / library | torch {torch_version}, {lib_version} |

## Recipe

{recipe_text}

Reproduce: `python -m prisma_widgets.zoo.train {name} --seed {seed}`.

## Data

`prisma_widgets.zoo.shapes` (one shape per image: 8 classes, 8 colours with jitter, radius 14-36% of the image,
any position and rotation, dark textured noisy backgrounds) and `prisma_widgets.zoo.scenes` (2-4 shapes in
distinct cells of a 3x3 layout, small/large, per-patch ground truth, captions). Training data is generated
fresh every step from seeds >= 1,000,000; evaluation uses seeds {eval_shapes} (shapes) and {eval_scenes} (scenes),
never seen in training.

## Measured (stored float16 weights, loaded through `zoo.build`)

| metric | value |
|---|---|
| {acc_name} on {n_shapes:,} fresh `shapes` (seed {eval_shapes}) | **{accuracy:.2%}** (floor checked in CI: {floor:.0%}) |
| last-layer patch logit lens on object patches of {n_scenes:,} fresh `scenes` (seed {eval_scenes}) | **{patch_lens_acc:.2%}** |
| last-layer CLS attention mass on object patches (mean over heads and images) | **{cls_attn_object_mass:.2%}** (uniform attention would give {object_patch_fraction:.2%}) |

Per-class {acc_name}: {per_class}.

{lens_text}

The CLS attention is recomputed from the last block's own qkv weights on its normalised input (pure torch),
CLS row, softmax over all 65 tokens; "object patches" are those with `patch_labels > 0` (an object covers
at least 8 of the patch's 64 pixels).

## Limits

A toy model: it knows only these synthetic shapes, colours and caption words. {limits}
"""


def write_card(name: str, seed: int, recipe: dict, metrics: dict, train_info: dict, device: str, weights: Path):
    model = registry.create(name)
    params = sum(p.numel() for p in model.parameters())
    if name == "mouse-vit":
        import timm

        arch = (f"timm `VisionTransformer` (`vit_tiny_patch16_224` family with img_size=64, patch_size=8, "
                f"embed_dim={registry.VIT_ARCH['embed_dim']}, depth={registry.VIT_ARCH['depth']}, "
                f"num_heads={registry.VIT_ARCH['num_heads']}, mlp_ratio 4, 8 classes)")
        summary = ("A tiny timm ViT classifier of the 8 synthetic shape classes, trained so that the last layer's "
                   "patch tokens also carry their own object's class.")
        lib = f"timm {timm.__version__}"
        stored, sparse = "all stored", ""
        stages = "; ".join(f"stage {k}: {st['steps']} steps, peak lr {st['lr']}, {st['warmup']} warm-up steps then "
                           f"cosine to 0, {st.get('n_shapes', recipe['n_shapes'])} single shapes + "
                           f"{st.get('n_scenes', recipe['n_scenes'])} scenes per step, patch-loss weight "
                           f"{st.get('patch_weight', recipe['patch_weight'])}"
                           for k, st in enumerate(recipe["stages"], 1))
        recipe_text = (
            f"AdamW (betas 0.9/0.99, weight decay {recipe['weight_decay']} on matrices), gradient clipping 1.0, "
            f"{sum(st['steps'] for st in recipe['stages'])} steps in warm restarts ({stages}); between stages the "
            "weights are rounded to float16 (as stored) and the optimizer starts afresh, so a run can resume from "
            "a stage's file (`--from-stage`). Initialisation: timm's, then mimetic attention weights and a 2-D "
            "sine-cosine start for the learned position embedding (`mimetic_init` in `zoo/train.py`). "
            "All data fresh every step. "
            "Loss = cross-entropy of the CLS head on the single shapes + (patch-loss weight) x an auxiliary "
            "per-patch cross-entropy: the model's own final norm + head applied to every patch token of the last "
            "block, on object patches only (single shapes and scenes). This auxiliary loss is why the last-layer "
            "patch logit lens is meaningful: it is part of the recipe, not an emergent property.")
        acc_name = "accuracy"
        lens_text = ("Logit lens: `model.head(model.fc_norm(model.forward_features(x)[:, 1:]))`, i.e. the final "
                     "norm and the classifier head applied to every patch token of the last block.")
        limits = "Background patches have no class of their own: the lens is only scored on object patches."
        floor = 0.97
    else:
        import open_clip

        v, t = registry.CLIP_VISION, registry.CLIP_TEXT
        arch = (f"open_clip `CLIP` (embed_dim {registry.CLIP_EMBED_DIM}; vision ViT 64 px, patch 8, width "
                f"{v['width']}, {v['layers']} layers, {v['width'] // v['head_width']} heads; text transformer width "
                f"{t['width']}, {t['layers']} layers, {t['heads']} heads, context length {t['context_length']}, "
                "open_clip's bundled BPE tokenizer)")
        summary = ("A tiny open_clip CLIP trained contrastively on captions of synthetic shapes and scenes; "
                   "zero-shot classifies the 8 shape classes with prompts \"a photo of a {shape}\".")
        lib = f"open_clip {open_clip.__version__}"
        n_used = len(train_info.get("used_tokens", []))
        stored = f"{params - 49408 * t['width'] + n_used * t['width']:,} stored"
        sparse = (f"; only the {n_used} token-embedding rows the training captions and prompts use are stored, "
                  "every other row of the 49408-row table is zero after loading")
        recipe_text = (
            "The vision tower starts from the trained mouse-vit (same block stack; see `vit_to_clip_visual` in "
            "`zoo/train.py`: timm's patch bias folded into the positional embedding, the ViT's classifier rows "
            "as the first 8 columns of `proj`), so train mouse-vit first. "
            f"AdamW (betas 0.9/0.98, weight decay {recipe['weight_decay']} on matrices, none on embeddings), lr "
            f"{recipe['lr']} (x{recipe['visual_lr_scale']} for the vision tower), {recipe['warmup']} warm-up steps then cosine to 0, gradient clipping 1.0, "
            f"{recipe['steps']} steps, learnable temperature (capped at 100). Each step: {recipe['n_shapes']} fresh "
            f"single-shape images with captions (templates such as \"a {{}}\", \"a photo of a {{}}\", \"a picture of a "
            f"{{}}\" around the class name with optional size, colour and position words) and {recipe['n_scenes']} "
            "fresh scenes with their captions (\"a small red circle at the top left and a blue star\"). Loss = "
            f"symmetric InfoNCE over the batch + {recipe['patch_weight']} x an auxiliary dense loss: every object "
            "patch token of the last block, through `ln_post` and `proj`, classified by cosine against the text "
            f"features of \"{DENSE_TEMPLATE.format('{shape}')}\" (temperature shared). The zero-shot prompt \"a photo "
            "of a {shape}\" also occurs among the single-shape caption templates.")
        acc_name = "zero-shot accuracy"
        lens_text = ("Patch lens: every patch token of the last block through `visual.ln_post` and `visual.proj`, "
                     "cosine with the text features of \"a photo of a {shape}\"; argmax vs. the patch's class.")
        limits = ("Words outside the caption vocabulary map to zero token embeddings. Its tiny vocabulary makes "
                  "it a matcher of shape, colour, size and position words, not a general CLIP.")
        floor = 0.90
    card = CARD.format(
        name=name, summary=summary, arch=arch, params=params, stored=stored, size_kb=weights.stat().st_size / 1024,
        sparse=sparse, mean=registry.MEAN, std=registry.STD, labels=", ".join(SHAPE_CLASSES), seed=seed,
        minutes=train_info["train_seconds"] / 60,
        hardware=(f"{device.upper()}: {platform.processor() or platform.machine()} ({_cpu_name()})" if device == "cpu"
                  else torch.cuda.get_device_name()),
        threads=torch.get_num_threads(), torch_version=torch.__version__, lib_version=lib, recipe_text=recipe_text,
        eval_shapes=EVAL_SHAPES_SEED, eval_scenes=EVAL_SCENES_SEED, n_shapes=N_EVAL_SHAPES, n_scenes=N_EVAL_SCENES,
        acc_name=acc_name, floor=floor, lens_text=lens_text, limits=limits,
        per_class=", ".join(f"{c} {a:.1%}" for c, a in metrics["per_class_accuracy"].items()),
        **{k: v for k, v in metrics.items() if k != "per_class_accuracy"},
    )
    return card


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", choices=registry.BUNDLED)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=None, help="override the recipe's step count (smoke runs)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--init-from", default=None, help="mouse-clip: the mouse-vit weights its vision tower "
                        "starts from (default: the shipped mouse-vit; train mouse-vit first to reproduce both)")
    parser.add_argument("--from-stage", type=int, default=1, help="mouse-vit: resume at this stage from "
                        "--init-from (the previous stage's file); --prior-seconds adds the earlier stages' time")
    parser.add_argument("--prior-seconds", type=float, default=0.0)
    parser.add_argument("--stage-dir", default=None, help="mouse-vit: write each intermediate stage's weights here")
    parser.add_argument("--out", default=None, help="folder for <name>.safetensors and <name>.md "
                        "(default: the package's zoo/weights and zoo/cards)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    log = lambda msg: print(f"[{args.name}] {msg}", flush=True)  # noqa: E731
    if args.name == "mouse-video":  # its own recipe and card: zoo/train_video.py
        from .train_video import run

        run(args.seed, args.steps, args.device, Path(args.out) if args.out else None, log)
        return
    recipe = dict(RECIPES[args.name])
    if args.steps is not None:  # smoke runs: every stage shortened
        if "stages" in recipe:
            recipe["stages"] = [dict(st, steps=args.steps) for st in recipe["stages"]]
        else:
            recipe["steps"] = args.steps
    if args.name == "mouse-vit":
        model, info = train_vit(args.seed, recipe, args.device, log, args.from_stage, args.init_from, args.stage_dir)
        info["train_seconds"] += args.prior_seconds
    else:
        model, info = train_clip(args.seed, recipe, args.device, log, args.init_from)
    out = Path(args.out) if args.out else None
    weights = registry.save(args.name, model.cpu(), (out / f"{args.name}.safetensors") if out else None,
                            used_tokens=info.get("used_tokens"),
                            metadata={"seed": str(args.seed), "recipe": json.dumps(recipe)})
    metrics = measure(args.name, weights)
    log(json.dumps(metrics))
    card = write_card(args.name, args.seed, recipe, metrics, info, args.device, weights)
    card_file = (out / f"{args.name}.md") if out else registry.card_path(args.name)
    card_file.parent.mkdir(parents=True, exist_ok=True)
    card_file.write_text(card)
    log(f"wrote {weights} ({weights.stat().st_size / 1024:.0f} KB) and {card_file}")


if __name__ == "__main__":
    main()
