"""The coverage sweep (``python -m prisma_widgets.hooked.coverage``) on a fast subset: one architecture per
new family passes the exactness suite, a CNN tower is refused with a reason, and the table renders."""

from __future__ import annotations

import dataclasses
import json

import pytest

from prisma_widgets.hooked.coverage import __main__ as cli
from prisma_widgets.hooked.coverage import catalog, checks, report

FAST = [
    ("timm", "deit_tiny_distilled_patch16_224", "pass"),  # distillation token
    ("timm", "vit_small_patch16_rope_mixed_224", "pass"),  # Eva: depth-dependent RoPE
    ("timm", "vit_pwee_patch16_reg1_gap_256", "pass"),  # parallel-scaling blocks
    ("open_clip", "ViT-B-16-SigLIP", "pass"),  # timm trunk, attention pool, logit bias
    ("open_clip", "RN50", "refused"),  # a ResNet tower: no tokens to hook
    ("transformers", "Dinov2WithRegistersForImageClassification", "pass"),
    ("transformers", "CLIPModel", "pass"),
    ("transformers", "TimesformerForVideoClassification", "pass"),  # clips, divided space-time attention
    ("transformers", "VideoMAEForVideoClassification", "pass"),  # tubelets, mean pool + fc_norm
]


def _entry(source: str, name: str) -> catalog.Entry:
    if source == "timm":
        return catalog.Entry("timm", name, lambda: catalog.timm_small(name), lambda m, x: m(x))
    pool = catalog.open_clip_entries() if source == "open_clip" else catalog.hf_entries()
    entry = next(e for e in pool if e.name == name)
    if source == "open_clip":  # the sweep's own build, narrowed to 64 channels and 64 pixels for speed
        entry = dataclasses.replace(entry, build=lambda: catalog.open_clip_small(name, image_size=64, width=64))
    return entry


@pytest.mark.parametrize("source,name,expected", FAST, ids=[f"{s}:{n}" for s, n, _ in FAST])
def test_the_suite_on_one_architecture_per_family(source, name, expected):
    record = checks.check(_entry(source, name))
    assert record["status"] == expected, record
    if expected == "pass":
        assert all(v is True for v in record["checks"].values())
        if isinstance(record["text"], dict):  # image-text models: the text tower is exact too
            assert all(v is True for v in record["text"].values()), record["text"]
    else:
        assert "ModifiedResNet" in record["reason"]


def test_the_catalog_enumerates_every_vit_and_every_open_clip_model():
    import open_clip
    import timm

    names = catalog.timm_names()
    assert "eva02_tiny_patch14_224" in names and "deit_tiny_distilled_patch16_224" in names
    assert "beit_base_patch16_224" not in names and "swin_tiny_patch4_window7_224" not in names
    assert set(names) <= set(timm.list_models())
    entries = catalog.open_clip_entries()
    assert [e.name for e in entries] == open_clip.list_models()
    assert sum(e.pretrained for e in entries) == len(open_clip.list_pretrained())


def test_the_command_resumes_and_writes_the_table(tmp_path):
    results, page = tmp_path / "results.jsonl", tmp_path / "models.md"
    assert cli.main(["--source", "transformers", "--match", "ViTModel", "--results", str(results)]) == 0
    first = results.read_text()
    assert json.loads(first)["status"] == "pass"
    assert cli.main(["--source", "transformers", "--match", "ViT*", "--results", str(results),
                     "--docs", str(page)]) == 0
    lines = results.read_text().splitlines()
    assert lines[0] == first.strip() and len(lines) == 2  # ViTModel was not checked again
    text = page.read_text()
    assert "| `ViTForImageClassification` | supported |" in text and "# Supported models" in text


def test_the_report_names_failures_and_refusals():
    results = {
        ("timm", "a"): {"source": "timm", "name": "a", "status": "pass", "module": "Eva"},
        ("timm", "b"): {"source": "timm", "name": "b", "status": "fail", "module": "Eva",
                        "checks": {"plain": True, "resid_post": False}},
        ("open_clip", "RN50"): {"source": "open_clip", "name": "RN50", "status": "refused", "pretrained": 3,
                                "reason": "a ResNet | tower", "trunk": "ModifiedResNet"},
        ("open_clip", "ViT-X"): {"source": "open_clip", "name": "ViT-X", "status": "pass", "pretrained": 2},
    }
    text = report.render(results, baseline={})
    assert "`Eva`: 1 of 2 supported" in text
    assert "**fails** resid_post" in text and "a ResNet / tower" in text
    assert "2 of 5 (model, tag) pairs" in text
    assert "pairs whose architecture passes: 2 of 5" in report.summary(results)
