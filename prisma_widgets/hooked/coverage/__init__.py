"""Which vision transformers prisma_widgets hooks exactly: a sweep over timm, open_clip and transformers.

``python -m prisma_widgets.hooked.coverage`` builds every timm ``VisionTransformer`` / ``Eva`` architecture,
every ``open_clip.list_models()`` entry and the wrapped Hugging Face classes small, with random weights
(:mod:`.catalog`), runs the exactness suite on each (:mod:`.checks`), appends one JSON line per architecture
to ``build/model_coverage.jsonl`` (a rerun skips what is there, so the sweep can run in pieces) and, with
``--docs``, writes ``docs/supported_models.md`` (:mod:`.report`).

Example:
    >>> from prisma_widgets.hooked.coverage import catalog, checks
    >>> entry = [e for e in catalog.hf_entries() if e.name == "ViTForImageClassification"][0]
    >>> checks.check(entry)["status"]
    'pass'
"""
