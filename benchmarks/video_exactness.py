"""Exactness of the video adapters at the published architectures' sizes (random weights, one clip of 224 px).

For VideoMAE (16 frames, tubelets of 2), TimeSformer (8 frames, divided space-time attention) and ViViT (16 frames
here, tubelets of 2): the output with no hooks against the module's own, every ``hook_resid_post`` against
``output_hidden_states`` (both bitwise), and with every attention pattern asked for (the explicit softmax) the
largest difference of the output and the residual stream, and of a pattern row's sum from 1.

    PYTHONPATH=. python benchmarks/video_exactness.py      # about 3 minutes on 2 CPU cores
"""

from __future__ import annotations

import time

import torch
import transformers as T

import prisma_widgets as pw

MODELS = {
    "VideoMAE (videomae-base-finetuned-kinetics shape)": lambda: T.VideoMAEForVideoClassification(
        T.VideoMAEConfig(num_labels=400)),
    "TimeSformer (timesformer-base-finetuned-k400 shape)": lambda: T.TimesformerForVideoClassification(
        T.TimesformerConfig(num_labels=400)),
    "ViViT (vivit-b-16x2-kinetics400 shape, 16 frames)": lambda: T.VivitForVideoClassification(
        T.VivitConfig(num_frames=16, num_labels=400)),
}


def main() -> None:
    torch.manual_seed(0)
    for name, build in MODELS.items():
        module = build().eval()
        model = pw.HookedViT(module)
        cfg = model.cfg
        x = torch.randn(1, cfg.input_frames, 3, *cfg.image_size)
        with torch.no_grad():
            started = time.time()
            ref = module(pixel_values=x, output_hidden_states=True)
            seconds = time.time() - started
            plain = torch.equal(model(x), ref.logits)
            out, cache = model.run_with_cache(x, names_filter="blocks.*.hook_resid_post")
            every, full = model.run_with_cache(x, names_filter=lambda n: "pattern" in n or "resid_post" in n)
        layers = range(cfg.n_layers)
        resid = torch.equal(out, ref.logits) and all(
            torch.equal(cache[f"blocks.{l}.hook_resid_post"], ref.hidden_states[l + 1]) for l in layers)
        resid_diff = max(float((full[f"blocks.{l}.hook_resid_post"] - ref.hidden_states[l + 1]).abs().max())
                         for l in layers)
        rows = max(float((full[n].sum(-1) - 1).abs().max()) for n in full if "pattern" in n)
        print(f"{name}: {cfg.n_tokens} tokens ({cfg.frames} frames x {cfg.grid[0]}x{cfg.grid[1]}); no hooks bitwise "
              f"{plain}; resid_post == hidden_states, all {cfg.n_layers} layers, bitwise {resid}; with patterns: "
              f"output {float((every - ref.logits).abs().max()):.1e}, stream {resid_diff:.1e}, "
              f"pattern rows |1 - sum| {rows:.1e}; the module's forward {seconds:.1f} s", flush=True)


if __name__ == "__main__":
    main()
