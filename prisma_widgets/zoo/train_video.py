"""Train the video mouse (``python -m prisma_widgets.zoo.train mouse-video``) and write its weights and card.

Training clips are fresh every step, from seeds ``1_000_000 * (seed + 1) + 500_000 + step`` (evaluation uses
seeds below 1,000,000, so no evaluation clip was ever seen). About 8 minutes on one idle CPU thread.
"""

from __future__ import annotations

import math
import platform
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from . import registry
from .clips import CLIP_FRAMES, CLIP_PATCH, CLIP_SIZE, MOTIONS, moving_shapes, tubelet_labels
from .video import TUBELET, VIDEO_ARCH, VIDEO_MEAN, VIDEO_STD, measure_clips, token_logits, video_pixels

NAME = "mouse-video"
VIDEO_RECIPE = dict(steps=1500, batch=64, lr=1e-3, warmup=100, weight_decay=0.05, patch_weight=0.5)
EVAL_CLIPS_SEED = 9
N_EVAL_CLIPS = 2000
FLOOR = 0.95


def video_data_seed(seed: int, step: int) -> int:
    return 1_000_000 * (seed + 1) + 500_000 + step


def _lr_factor(step: int, total: int, warmup: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(total - warmup, 1)))


def train_video(seed: int, recipe: dict, device: str, log) -> tuple[torch.nn.Module, dict]:
    """AdamW, warm-up then cosine; loss = clip cross-entropy + ``patch_weight`` x the per-token cross-entropy of
    the model's own readout (``classifier(fc_norm(token))``) on the tokens the moving object covers."""
    torch.manual_seed(seed)
    model = registry.create(NAME).to(device).train()
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embed" not in n]
    rest = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embed" not in n)]
    opt = torch.optim.AdamW([dict(params=decay, weight_decay=recipe["weight_decay"]),
                             dict(params=rest, weight_decay=0.0)], lr=recipe["lr"], betas=(0.9, 0.99))
    steps = recipe["steps"]
    t0 = time.time()
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = recipe["lr"] * _lr_factor(step, steps, recipe["warmup"])
        clips = moving_shapes(recipe["batch"], seed=video_data_seed(seed, step))
        clip, lens = token_logits(model, video_pixels(clips.videos).to(device))
        labels = torch.as_tensor(clips.labels, device=device)
        gt = torch.from_numpy(tubelet_labels(clips.patch_labels, TUBELET)).flatten(1).to(device)
        obj = gt > 0
        loss_clip = F.cross_entropy(clip, labels)
        loss_patch = F.cross_entropy(lens[obj], gt[obj] - 1)
        loss = loss_clip + recipe["patch_weight"] * loss_patch
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            acc = float((clip.argmax(-1) == labels).float().mean())
            log(f"step {step:5d}/{steps}  loss {loss.item():.3f} (clip {loss_clip.item():.3f}, patch "
                f"{loss_patch.item():.3f})  batch acc {acc:.3f}  {time.time() - t0:.0f}s")
    return model.eval(), {"train_seconds": time.time() - t0}


def measure_video(weights: Path) -> dict:
    """The card's numbers, on the stored float16 weights loaded back through ``zoo.build``."""
    model, _ = registry.build(NAME, weights=weights)
    return measure_clips(model, moving_shapes(N_EVAL_CLIPS, seed=EVAL_CLIPS_SEED))


CARD = """# mouse-video

A tiny Hugging Face VideoMAE video classifier: which way does the shape move (right, left, down, up)? No single
frame tells, so it must compare frames. Trained so that the last layer's tokens also carry the motion of the
object they cover.

| | |
|---|---|
| architecture | transformers `VideoMAEForVideoClassification` ({arch}) |
| parameters | {params:,} (all stored) |
| weights | `prisma_widgets/zoo/weights/mouse-video.safetensors`, {size_kb:.0f} KB, float16 safetensors |
| input | {input} |
| token grid | {tokens} |
| labels | {labels} |
| seed | {seed} |
| training time | {minutes:.1f} min on {hardware} ({threads} torch threads, shared machine) |
| torch / library | torch {torch_version}, transformers {tf_version} |

## Recipe

AdamW (betas 0.9/0.99, weight decay {weight_decay} on matrices), gradient clipping 1.0, {steps} steps of
{batch} fresh clips, peak lr {lr}, {warmup} warm-up steps then cosine to 0, HF's own initialisation. Loss =
cross-entropy of the clip logits + {patch_weight} x an auxiliary per-token cross-entropy: the model's own
`fc_norm` + `classifier` applied to every last-layer token the moving object covers (per-frame ground truth
reduced to token frames: a token is the object's if the object covers 6+ of its pixels in either of its two
frames). This auxiliary loss is why the last-layer patch lens is meaningful: it is part of the recipe, not an
emergent property.

Reproduce: `python -m prisma_widgets.zoo.train mouse-video --seed {seed}`.

## Data

`prisma_widgets.zoo.moving_shapes`: one of the 8 shapes (any colour, radius 14-22% of the frame, any rotation)
sliding 1.4-2.2 px per frame right, left, down or up across a static dark textured background, fresh pixel
noise in every frame; per-frame per-patch ground truth. Training clips are fresh every step from seeds
>= 1,000,000; evaluation uses seed {eval_seed}, never seen in training.

## Measured (stored float16 weights, loaded through `zoo.build`)

| metric | value |
|---|---|
| accuracy on {n_eval:,} fresh clips (seed {eval_seed}) | **{accuracy:.2%}** (floor checked in CI: {floor:.0%}) |
| last-layer patch lens on the moving object's tokens, every token frame | **{patch_lens_acc:.2%}** ({vs_chance}) |

Per token frame: {per_frame}.

Patch lens: `classifier(fc_norm(h))` for every token `h` of the last layer's output (the readout without the mean
pooling), argmax vs. the object's motion, scored on the tokens the object covers.

## Limits

A toy model: one shape, four straight motions, 8 frames of 32 px. Background tokens have no class of their
own: the lens is only scored on object tokens.
"""


def write_video_card(seed: int, recipe: dict, metrics: dict, info: dict, device: str, weights: Path) -> str:
    import transformers

    model = registry.create(NAME)
    arch = ", ".join(f"{k}={v}" for k, v in VIDEO_ARCH.items() if "dropout" not in k)
    return CARD.format(
        arch=arch, params=sum(p.numel() for p in model.parameters()), size_kb=weights.stat().st_size / 1024,
        input=(f"{CLIP_FRAMES} frames of {CLIP_SIZE} x {CLIP_SIZE} RGB, `[n, frames, 3, H, W]`, rescaled to "
               f"[0, 1], mean {VIDEO_MEAN}, std {VIDEO_STD} (`VideoMAEImageProcessor` at {CLIP_SIZE} px gives "
               "the same pixels)"),
        tokens=(f"no prefix token; {CLIP_FRAMES // TUBELET} token frames (tubelet {TUBELET}) x "
                f"{CLIP_SIZE // CLIP_PATCH} x {CLIP_SIZE // CLIP_PATCH} patches of {CLIP_PATCH} px; mean pooling, "
                "`fc_norm`, `classifier`"),
        vs_chance=f"chance {metrics['chance']:.0%}; 3x chance = {3 * metrics['chance']:.0%}",
        labels=", ".join(MOTIONS), seed=seed,
        minutes=info["train_seconds"] / 60,
        hardware=f"{device.upper()}: {platform.machine()}" if device == "cpu" else torch.cuda.get_device_name(),
        threads=torch.get_num_threads(), torch_version=torch.__version__, tf_version=transformers.__version__,
        eval_seed=EVAL_CLIPS_SEED, n_eval=N_EVAL_CLIPS, floor=FLOOR,
        per_frame=", ".join(f"t{t} {a:.1%}" for t, a in enumerate(metrics["patch_lens_frame_acc"])),
        **recipe, **{k: v for k, v in metrics.items() if k != "patch_lens_frame_acc"},
    )


def run(seed: int, steps: int | None, device: str, out: Path | None, log) -> None:
    """Train, save the float16 weights, measure them and write the card (into ``out`` or the package)."""
    recipe = dict(VIDEO_RECIPE, **({"steps": steps} if steps is not None else {}))
    model, info = train_video(seed, recipe, device, log)
    weights = registry.save(NAME, model.cpu(), (out / f"{NAME}.safetensors") if out else None,
                            metadata={"seed": str(seed), "recipe": repr(recipe)})
    metrics = measure_video(weights)
    log(repr(metrics))
    card_file = (out / f"{NAME}.md") if out else registry.card_path(NAME)
    card_file.parent.mkdir(parents=True, exist_ok=True)
    card_file.write_text(write_video_card(seed, recipe, metrics, info, device, weights))
    log(f"wrote {weights} ({weights.stat().st_size / 1024:.0f} KB) and {card_file}")

