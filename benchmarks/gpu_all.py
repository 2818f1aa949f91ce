"""Every GPU check in one run: the CUDA-marked tests, then each benchmark's GPU section, all into one file.

GPU time is scarce, so a session with a GPU runs this once and reads one file:

    python benchmarks/gpu_all.py                 # writes $OUT/gpu_results.md ($TMPDIR/prisma-gpu-results without $OUT)
    python benchmarks/gpu_all.py --budget 480    # seconds for everything; each step gets at most what is left

Steps, in order (each a child process with its own time limit, its output appended as soon as it ends, so a
run cut short still leaves the steps before): the environment (torch, CUDA device, optional packages), the
CUDA-marked tests (``tests/test_cuda.py``: every public path on ``cuda`` in float32 and bfloat16 against the CPU),
then ``--gpu-only`` sections of hook_overhead (bf16, batch 64), patching (ViT-B/16 sweep against the naive loop
and full forwards, fp32 and bf16), sae_train (d=768 x32, batch 4096, against the eager loop and SAE-Lens),
cache_activations (images/s against the bare forward), logit_lens and attention_grid (the widget's compute).
Without CUDA every test is skipped, every section says "no CUDA here", and the file is still written: the dry
run that proves the script end to end.

On the device machine, packages this project uses beyond torch/timm may be missing (open_clip_torch, anywidget,
sae-lens): their tests and rows are skipped and the environment step lists them. To cover them, carry wheels as
the device README says (``pip download --no-deps ... -d .whl`` for each missing package and its needs) and
start the command with its ``pip install --target /tmp/site`` line.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable

ENVIRONMENT = r"""
import importlib, platform, torch
print(f"python {platform.python_version()}, torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}")
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"device: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, CUDA {torch.version.cuda}")
for name in ("timm", "open_clip", "anywidget", "traitlets", "sae_lens", "skimage", "safetensors", "tqdm"):
    try:
        module = importlib.import_module(name)
        print(f"  {name:<12} {getattr(module, '__version__', '(no version)')}")
    except Exception as err:
        print(f"  {name:<12} MISSING ({type(err).__name__}): its tests and benchmark rows are skipped")
"""

# (title, arguments after the interpreter, most seconds it may take)
STEPS: list[tuple[str, list[str], int]] = [
    ("environment", ["-c", ENVIRONMENT], 60),
    ("CUDA tests (tests/test_cuda.py, float32 and bfloat16 against the CPU)",
     ["-m", "pytest", "-m", "cuda", "tests/test_cuda.py", "-q", "-rs", "-p", "no:cacheprovider"], 240),
    ("hook overhead: ViT-B/16 bf16 batch 64 against the plain forward", ["benchmarks/hook_overhead.py", "--gpu-only"], 90),
    ("patching: ViT-B/16 sweep against the naive loop (target >= 50x) and full forwards",
     ["benchmarks/patching.py", "--gpu-only"], 150),
    ("SAE training: d=768 x32, batch 4096, against the eager loop (target >= 2x) and SAE-Lens",
     ["benchmarks/sae_train.py", "--gpu-only"], 150),
    ("activation caching: images/s against the bare forward (target >= 80%)",
     ["benchmarks/cache_activations.py", "--gpu-only"], 90),
    ("logit lens: every layer against one forward", ["benchmarks/logit_lens.py", "--gpu-only"], 45),
    ("AttentionGrid: building the widget against the plain forward", ["benchmarks/attention_grid.py", "--gpu-only"], 60),
]


def run_step(args: list[str], limit: float, env: dict[str, str]) -> tuple[int | str, str, float]:
    start = time.perf_counter()
    try:
        done = subprocess.run([PY, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=limit)
        rc: int | str = done.returncode
        output = done.stdout + (("\n[stderr]\n" + done.stderr) if done.stderr.strip() else "")
    except subprocess.TimeoutExpired as err:
        rc = f"stopped after {limit:.0f} s"
        output = "".join(part.decode() if isinstance(part, bytes) else (part or "") for part in (err.stdout, err.stderr))
    return rc, output, time.perf_counter() - start


def _quiet_stderr(text: str) -> str:
    """Drop library warnings that repeat in every step; keep everything else."""
    return "\n".join(line for line in text.splitlines() if "No pretrained weights loaded" not in line)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.environ.get("OUT") or os.path.join(tempfile.gettempdir(), "prisma-gpu-results"))
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for all steps together")
    parser.add_argument("--only", default="", help="comma-separated step numbers (1-based) to run")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "gpu_results.md"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
           "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "PRISMA_WIDGETS_OFFLINE": "1", "TQDM_DISABLE": "1"}
    env.pop("PRISMA_WIDGETS_TEST_DEVICE", None)
    chosen = {int(i) for i in args.only.split(",") if i.strip()}
    deadline = time.perf_counter() + args.budget
    failures = 0
    with path.open("w") as fh:
        fh.write(f"# prisma_widgets GPU run, {time.strftime('%Y-%m-%d %H:%M:%S')}\n\n")
        fh.write(f"`{' '.join([Path(PY).name, *sys.argv])}` in {ROOT}, budget {args.budget:.0f} s\n")
        for number, (title, step_args, limit) in enumerate(STEPS, 1):
            if chosen and number not in chosen:
                continue
            left = deadline - time.perf_counter()
            fh.write(f"\n## {number}. {title}\n\n")
            if left < 5:
                fh.write("not run: the budget is spent\n")
                failures += 1
                continue
            print(f"[{number}/{len(STEPS)}] {title} (at most {min(limit, left):.0f} s)", flush=True)
            rc, output, seconds = run_step(step_args, min(limit, left), env)
            fh.write(f"`python {' '.join(step_args) if step_args[0] != '-c' else '-c <environment>'}`: "
                     f"exit {rc}, {seconds:.1f} s\n\n```\n{_quiet_stderr(output).strip()}\n```\n")
            fh.flush()
            failures += rc != 0
        fh.write(f"\n{'all steps passed' if not failures else f'{failures} step(s) failed or did not run'}\n")
    print(f"results: {path}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
