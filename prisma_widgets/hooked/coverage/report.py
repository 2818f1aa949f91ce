"""The coverage table: the sweep's records as a summary and as ``docs/supported_models.md``."""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

from ...files import atomic_write_text
from .catalog import TIMM_OTHER_MODULES, timm_other_counts

DOCS_PAGE = os.path.join("docs", "supported_models.md")
Results = dict[tuple[str, str], dict[str, Any]]

_CHECKS = ("plain", "resid_post", "pattern", "ablate", "all_hooks", "readout")


def load(path: str | None) -> Results:
    """The latest record per ``(source, name)`` in a JSON-lines results file (empty when there is none)."""
    out: Results = {}
    if not path or not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                r = json.loads(line)
                out[(r["source"], r["name"])] = r
    return out


def counts(results: Results) -> dict[str, Any]:
    """Architectures passing per library, and the open_clip pretrained (model, tag) pairs they cover."""
    by_source: dict[str, Counter[str]] = {}
    pairs = Counter()
    for (source, _), r in results.items():
        by_source.setdefault(source, Counter())[r["status"]] += 1
        if source == "open_clip":
            pairs["all"] += r.get("pretrained", 0)
            if r["status"] == "pass":
                pairs["pass"] += r.get("pretrained", 0)
    return {"by_source": by_source, "pairs": pairs}


def summary(results: Results, baseline: Results | None = None) -> str:
    """A few lines: per library, passing / all; the open_clip pairs; before / after when a baseline is given."""
    lines = []
    now = counts(results)
    before = counts(baseline) if baseline else None
    for source, c in sorted(now["by_source"].items()):
        total = sum(c.values())
        line = f"{source}: {c['pass']} of {total} architectures pass ({dict(c)})"
        if before and source in before["by_source"]:
            line += f"; before: {before['by_source'][source]['pass']}"
        lines.append(line)
    p = now["pairs"]
    line = f"open_clip pretrained (model, tag) pairs whose architecture passes: {p['pass']} of {p['all']}"
    if before:
        line += f" (before: {before['pairs']['pass']})"
    return "\n".join(lines + [line])


def _status(r: dict[str, Any]) -> str:
    if r["status"] == "pass":
        return "supported"
    if r["status"] == "fail":
        failed = [k for k in _CHECKS if r.get("checks", {}).get(k) is not True]
        return f"**fails** {', '.join(failed)}"
    return {"refused": "refused", "unbuilt": "not built", "skipped": "skipped", "error": "**error**"}[r["status"]]


def _text(r: dict[str, Any]) -> str:
    t = r.get("text")
    if isinstance(t, dict):
        return "exact" if all(v is True for v in t.values()) else "**fails** " + ", ".join(k for k, v in t.items() if v is not True)
    if not t or t == "no text tower":
        return "–"
    return "no hooks: " + str(t).split(":", 1)[-1].strip().split(":")[0][:80]


def _reason(r: dict[str, Any]) -> str:
    return (r.get("reason") or "").replace("|", "/").replace("\n", " ")[:160]


def _section(title: str, rows: list[dict[str, Any]], before: Results | None) -> list[str]:
    passing = sorted(r["name"] for r in rows if r["status"] == "pass")
    others = sorted((r for r in rows if r["status"] != "pass"), key=lambda r: r["name"])
    head = f"### {title}: {len(passing)} of {len(rows)} supported"
    if before is not None:
        was = sum(1 for r in rows if before.get((r["source"], r["name"]), {}).get("status") == "pass")
        head += f" (before: {was})"
    out = [head, ""]
    if passing:
        out += ["<details><summary>supported architectures</summary>", "", ", ".join(f"`{n}`" for n in passing), "",
                "</details>", ""]
    if others:
        out += ["| architecture | status | why |", "|---|---|---|"]
        out += [f"| `{r['name']}` | {_status(r)} | {_reason(r)} |" for r in others] + [""]
    return out


def render(results: Results, baseline: Results | None = None) -> str:
    """The whole docs page."""
    now = counts(results)
    lines = [
        "# Supported models",
        "",
        "Every vision transformer architecture in timm (`VisionTransformer` and `Eva`), open_clip and the Hugging "
        "Face `transformers` families below, built small (2 blocks, small images where the constructor allows) with "
        "random weights and checked against the library's own forward. An architecture is **supported** when all "
        "of these hold:",
        "",
        "- with no hooks the output is bit-identical to the library's;",
        "- every `blocks.{l}.hook_resid_post` equals the library's own block output, bit for bit;",
        "- every attention pattern is a distribution (rows sum to 1 within 1e-5);",
        "- zero-ablating a head through `hook_z` changes the output;",
        "- with every hook cached, the output is within 1e-5 of the library's;",
        "- the readout parts (final norm, pooling, head norm, projection) rebuild the output from the last "
        "`hook_resid_post` within 1e-5.",
        "",
        "For image-text models the text tower (`text.*` hooks) gets the same checks, reported in its own column. "
        "What each hook means in each family (RoPE, gated MLPs, parallel blocks ...) is on [Hook names](hook_names.md). "
        "Regenerate this page with",
        "",
        "```bash",
        "nice python -m prisma_widgets.hooked.coverage --docs     # resumable: records go to build/model_coverage.jsonl",
        "```",
        "",
        "## Summary",
        "",
        "| library | supported | refused | other |",
        "|---|---|---|---|",
    ]
    for source, c in sorted(now["by_source"].items()):
        other = sum(v for k, v in c.items() if k not in ("pass", "refused"))
        lines.append(f"| {source} | {c['pass']} of {sum(c.values())} | {c['refused']} | {other} |")
    p = now["pairs"]
    lines += ["", f"**open_clip pretrained weights:** {p['pass']} of {p['all']} (model, tag) pairs from "
              "`open_clip.list_pretrained()` have an architecture that passes."]
    if baseline:
        b = counts(baseline)
        lines += ["", f"Before this sweep's adapters (issue 14): {b['pairs']['pass']} pairs; "
                  + ", ".join(f"{s} {c['pass']}" for s, c in sorted(b["by_source"].items())) + " architectures."]
    lines += ["", "## timm", ""]
    timm_rows = [r for (s, _), r in results.items() if s == "timm"]
    for cls in sorted({r.get("module", "not built") for r in timm_rows}):
        lines += _section(f"`{cls}`", [r for r in timm_rows if r.get("module", "not built") == cls], baseline)
    lines += ["Other timm transformer families have classes of their own (relative-position or windowed attention, "
              "hierarchical stages, class-attention heads) and are not wrapped:", "",
              "| timm module | architectures |", "|---|---|"]
    lines += [f"| `{m}` | {n} |" for m, n in timm_other_counts().items() if m in TIMM_OTHER_MODULES and n]
    lines += ["", "## open_clip", "", "| model | image tower | pretrained tags | status | text hooks | note |",
              "|---|---|---|---|---|---|"]
    for (s, name), r in sorted(results.items()):
        if s != "open_clip":
            continue
        why = _reason(r) if r["status"] != "pass" else r.get("note", "")
        lines.append(f"| `{name}` | {r.get('trunk', '')} | {r.get('pretrained', 0)} | {_status(r)} | {_text(r)} | "
                     f"{why} |")
    lines += ["", "## Hugging Face transformers", "", "| class | status | text hooks | why |", "|---|---|---|---|"]
    for (s, name), r in sorted(results.items()):
        if s == "transformers":
            lines.append(f"| `{name}` | {_status(r)} | {_text(r)} | {_reason(r)} |")
    return "\n".join(lines) + "\n"


def write(path: str, results: Results, baseline: Results | None = None) -> None:
    atomic_write_text(path, render(results, baseline))
