"""The exactness suite one architecture must pass.

Image tower (decides supported / failed):

* ``plain``: with no hooks the output is bit-identical to the library's own forward;
* ``resid_post``: every ``blocks.{l}.hook_resid_post`` equals the library's own block output (forward hooks
  on the model's blocks while the library runs), and the output with those hooks is still bit-identical;
* ``pattern``: every attention pattern is a distribution (rows sum to 1 within 1e-5, no negative entry);
* ``ablate``: zeroing one head through ``hook_z`` changes the output;
* ``all_hooks``: with every hook cached the output is within 1e-5 of the library's;
* ``readout``: the readout parts (final norm, pool, head norm, projection) rebuild the output from the last
  ``hook_resid_post`` within 1e-5 (what :class:`~prisma_widgets.analysis.readout.Readout` relies on).

Text tower (image-text models, reported beside): ``text`` is the same plain / all-hooks / per-block check on
the prompts' side. Only the public ``HookedViT`` API is used for the image checks, so the suite also measures
an older checkout (``PYTHONPATH=<old tree>``) for the before / after counts.
"""

from __future__ import annotations

import time
import traceback
from typing import Any

import torch

from .catalog import Entry, TooBig

ATOL = 1e-5


def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    return a.shape == b.shape and bool(torch.allclose(a, b, atol=ATOL, rtol=ATOL))


def _block_outputs(blocks: Any, run: Any) -> dict[int, torch.Tensor]:
    """Each block's output while ``run()`` calls the library itself."""
    seen: dict[int, torch.Tensor] = {}
    handles = [blk.register_forward_hook(lambda mod, args, out, i=i: seen.__setitem__(i, out[0] if isinstance(
        out, tuple) else out)) for i, blk in enumerate(blocks)]
    try:
        run()
    finally:
        for h in handles:
            h.remove()
    return seen


def image_checks(hooked: Any, entry: Entry, module: torch.nn.Module) -> dict[str, Any]:
    """The image-tower suite on a wrapped model; each check ``True`` / ``False`` (or a short reason)."""
    cfg = hooked.cfg
    g = torch.Generator().manual_seed(0)
    clip = [cfg.input_frames] if getattr(cfg, "is_video", False) else []  # a video model reads [batch, T, 3, H, W]
    pixels = torch.randn(2, *clip, 3, *cfg.image_size, generator=g)
    out: dict[str, Any] = {}
    with torch.no_grad():
        lib = _block_outputs(hooked.adapter.blocks, lambda: out.setdefault("_ref", entry.image(module, pixels)))
        ref = out.pop("_ref")
        out["plain"] = torch.equal(hooked(pixels), ref)
        got, cache = hooked.run_with_cache(pixels, names_filter="blocks.*.hook_resid_post")
        same = all(torch.equal(cache[f"blocks.{i}.hook_resid_post"], lib[i]) for i in range(cfg.n_layers))
        out["resid_post"] = same and torch.equal(got, ref)
        _, cache = hooked.run_with_cache(pixels, names_filter="blocks.*.attn.hook_pattern")
        out["pattern"] = all(
            bool((p >= 0).all()) and bool(((p.sum(-1) - 1).abs() <= ATOL).all()) for p in cache.values())

        def zero_head(z: torch.Tensor, hook: Any) -> torch.Tensor:
            z = z.clone()
            z[:, :, 0] = 0
            return z

        ablated = hooked.run_with_hooks(pixels, fwd_hooks=[("blocks.0.attn.hook_z", zero_head)])
        out["ablate"] = not torch.equal(ablated, ref)
        every, cache = hooked.run_with_cache(pixels)
        out["all_hooks"] = _close(every, ref) and set(cache) == set(hooked.hook_names())
        out["readout"] = _readout(hooked, cache, ref)
    return out


def _readout(hooked: Any, cache: Any, ref: torch.Tensor) -> bool | str:
    a = hooked.adapter
    if not hasattr(a, "pool") or not hasattr(a, "project"):
        return "no readout parts"
    last = cache[f"blocks.{hooked.cfg.n_layers - 1}.hook_resid_post"]
    norm = a.final_norm()
    pooled = norm(a.pool(last)) if a.norm_after_pool else a.pool(norm(last))
    return _close(a.project(a.head_norm()(pooled)), ref)


def text_checks(hooked: Any, entry: Entry, module: torch.nn.Module) -> dict[str, Any] | str:
    """The text tower: plain, every hook, and each block against the library; a reason string when refused."""
    if entry.text is None or not hasattr(hooked, "run_text_with_cache"):
        return "no text tower"
    try:
        tower = hooked.adapter.text_tower()
    except Exception as err:  # refused text towers say why
        return f"{type(err).__name__}: {err}"
    tokens = entry.text_tokens(module)
    with torch.no_grad():
        holder: dict[str, torch.Tensor] = {}
        lib = _block_outputs(tower.blocks, lambda: holder.setdefault("ref", entry.text(module, tokens)))
        ref = holder["ref"]
        plain = torch.equal(hooked.run_text_with_hooks(tokens), ref)
        got, cache = hooked.run_text_with_cache(tokens, "text.blocks.*.hook_resid_post")
        per_block = all(torch.equal(cache[f"text.blocks.{i}.hook_resid_post"], lib[i]) for i in range(tower.n_layers))
        every, cache = hooked.run_text_with_cache(tokens)
        patterns = all(bool(((p.sum(-1) - 1).abs() <= ATOL).all()) for n, p in cache.items() if n.endswith("pattern"))
    return {"plain": plain, "resid_post": per_block and _close(got, ref), "all_hooks": _close(every, ref),
            "pattern": patterns}


def check(entry: Entry) -> dict[str, Any]:
    """Build ``entry``, wrap it and run the suite: a JSON-ready record with ``status`` pass / fail / refused / error."""
    import prisma_widgets as pw

    started = time.time()
    record: dict[str, Any] = {"source": entry.source, "name": entry.name, "pretrained": entry.pretrained,
                              "note": entry.note, **entry.meta}
    try:
        torch.manual_seed(0)
        module = entry.build().eval()
    except TooBig as err:
        return record | {"status": "skipped", "reason": f"too big to build here: {err}", "seconds": round(
            time.time() - started, 2)}
    except Exception as err:
        return record | {"status": "unbuilt", "reason": f"{type(err).__name__}: {err}"[:300],
                         "seconds": round(time.time() - started, 2)}
    record["module"] = f"{type(module).__name__}"
    try:
        hooked = pw.HookedViT(module, name=entry.name)
    except pw.UnsupportedModelError as err:
        return record | {"status": "refused", "reason": str(err).split(" Supported:")[0].split("; supported:")[0][:300],
                         "seconds": round(time.time() - started, 2)}
    except Exception as err:
        return record | {"status": "error", "reason": f"wrapping: {type(err).__name__}: {err}"[:300],
                         "seconds": round(time.time() - started, 2)}
    try:
        checks = image_checks(hooked, entry, module)
        record["checks"] = checks
        record["status"] = "pass" if all(v is True for v in checks.values()) else "fail"
    except Exception as err:
        record["status"] = "error"
        record["reason"] = f"{type(err).__name__}: {err}"[:300]
        record["trace"] = traceback.format_exc(limit=3)[-600:]
    try:
        record["text"] = text_checks(hooked, entry, module)
    except Exception as err:
        record["text"] = f"error: {type(err).__name__}: {err}"[:300]
    record["seconds"] = round(time.time() - started, 2)
    return record
