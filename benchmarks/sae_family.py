"""The SAE family on the bundled mouse ViT: explained variance and loss recovered at a fixed L0, per architecture.

Every architecture gets the same activations (``blocks.2.hook_resid_post`` of ``mouse-vit`` on the shapes toy
set, all tokens), the same width, batch and number of steps, and is scored on held-out images: explained
variance of the hook, and the classifier's loss recovered when the reconstruction is spliced in (against the
true labels; floor: the hook zero-ablated). TopK and BatchTopK take ``k = L0``; ReLU, JumpReLU and Gated have a
penalty coefficient instead, searched (secant steps in log-log) until the L0 on held-out rows is near the
target; the table shows the run closest to it, with its actual L0. A transcoder (``blocks.0.ln2`` ->
``blocks.0.hook_mlp_out``, spliced in place of block 0's MLP, the one whose zero-ablation costs the most; floor:
that MLP zero-ablated) and a crosscoder over ``blocks.1`` and ``blocks.2`` resid_post (loss recovered per layer)
come last, TopK with the same k. tokens/s: the training run's rows per wall-clock second (one thread).

    OMP_NUM_THREADS=1 nice python benchmarks/sae_family.py [--l0 16] [--steps 400] [--expansion 4]
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time

import torch

import prisma_widgets as pw

HOOK = "blocks.2.hook_resid_post"
LN2, MLP_OUT, RESID1 = "blocks.0.ln2.hook_normalized", "blocks.0.hook_mlp_out", "blocks.1.hook_resid_post"
START = {"relu": ("l1", 0.7), "jumprelu": ("l0", 0.0064), "gated": ("l1", 0.7)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--l0", type=int, default=16)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--expansion", type=int, default=4)
    parser.add_argument("--train-images", type=int, default=300)
    parser.add_argument("--eval-images", type=int, default=100)
    parser.add_argument("--tries", type=int, default=3, help="runs per penalty architecture to reach the L0")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = pw.load("mouse-vit")
    train_images, _ = pw.zoo.shapes(args.train_images, seed=0)
    eval_images, eval_labels = pw.zoo.shapes(args.eval_images, seed=1)
    folder = tempfile.mkdtemp(prefix="sae-family-")
    hooks = [HOOK, LN2, MLP_OUT, RESID1]
    train = pw.cache_activations(model, train_images, hooks, f"{folder}/train", progress=False, dtype="float32")
    held = pw.cache_activations(model, eval_images, hooks, f"{folder}/eval", progress=False, dtype="float32")
    print(f"mouse-vit {HOOK}: {len(train)} training rows, {len(held)} held-out rows ({args.eval_images} images); "
          f"d_sae = {args.expansion} x 128, batch {args.batch}, {args.steps} steps; target L0 {args.l0}; "
          f"{torch.get_num_threads()} thread(s)")
    common = dict(expansion=args.expansion, batch_size=args.batch, steps=args.steps, progress=False, seed=0)

    def score(sae: pw.SAE, seconds: float) -> dict[str, float]:
        res = sae.evaluate(held, model=model, images=eval_images, labels=eval_labels)
        res["tokens_per_s"] = args.batch * args.steps / seconds
        return res

    def run(data, **kw) -> tuple[pw.SAE, float]:
        start = time.perf_counter()
        sae = pw.train_sae(data, **common, **kw)
        return sae, time.perf_counter() - start

    rows = []
    for arch in ("topk", "batchtopk"):
        sae, sec = run(train.select(HOOK), arch=arch, k=args.l0)
        rows.append((arch, f"k={args.l0}", score(sae, sec)))
    for arch, (name, coef) in START.items():
        tried: list[tuple[float, dict[str, float]]] = []
        for _ in range(args.tries):
            sae, sec = run(train.select(HOOK), arch=arch, **{name: coef})
            res = score(sae, sec)
            tried.append((coef, res))
            print(f"  {arch} {name}={coef:.4g}: L0 {res['l0']:.1f}", flush=True)
            if abs(res["l0"] - args.l0) < 1:
                break
            if len(tried) >= 2:  # secant in log(coef) vs log(L0)
                (c0, r0), (c1, r1) = tried[-2], tried[-1]
                slope = (math.log(r1["l0"]) - math.log(r0["l0"])) / (math.log(c1) - math.log(c0) or 1e-9)
                slope = slope if slope < -0.05 else -0.5
            else:
                slope = -0.5
            coef = coef * math.exp((math.log(args.l0) - math.log(max(res["l0"], 0.1))) / slope)
        best_coef, best = min(tried, key=lambda t: abs(t[1]["l0"] - args.l0))
        rows.append((arch, f"{name}={best_coef:.3g}", best))
    tc, sec = run(train, kind="transcoder", hooks=[LN2, MLP_OUT], k=args.l0)
    rows.append(("transcoder topk", "ln2 -> mlp_out", score(tc, sec)))
    cc, sec = run(train, kind="crosscoder", hooks=[RESID1, HOOK], k=args.l0)
    cres = score(cc, sec)
    rows.append(("crosscoder topk", "resid 1+2", cres))

    print(f"\n{'architecture':<17}{'setting':<16}{'L0':>7}{'expl. var':>11}{'loss rec.':>11}{'acc spliced':>13}"
          f"{'acc clean':>11}{'tokens/s':>10}")
    for arch, setting, r in rows:
        print(f"{arch:<17}{setting:<16}{r['l0']:>7.1f}{r['explained_variance']:>11.3f}{r['loss_recovered']:>11.3f}"
              f"{r['accuracy_spliced']:>13.3f}{r['accuracy_clean']:>11.3f}{r['tokens_per_s']:>10,.0f}")
    print(f"crosscoder per layer ({RESID1}, {HOOK}): explained variance "
          f"{', '.join(f'{v:.3f}' for v in cres['explained_variance_per_layer'])}; loss recovered "
          f"{', '.join(f'{v:.3f}' for v in cres['loss_recovered_per_layer'])}")
    print(f"loss: cross-entropy against the true labels; clean {rows[0][2]['loss_clean']:.4f}, the hook zero-ablated "
          f"{rows[0][2]['loss_zero']:.4f}; transcoder floor (MLP zero-ablated) {rows[-2][2]['loss_zero']:.4f}")


if __name__ == "__main__":
    main()
