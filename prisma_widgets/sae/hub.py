"""SAEs from the Hugging Face hub: ``pw.SAE.load("hf:<owner>/<repo>")`` or ``"hf:<owner>/<repo>/<folder>"``.

The repository (or the folder in it) is downloaded into the hub's local cache and read like a local folder:
an SAE-Lens folder (``cfg.json`` + ``sae_weights.safetensors``) or a ViT-Prisma one (``config.json`` + a
state dict). Offline (``HF_HUB_OFFLINE=1``, ``PRISMA_WIDGETS_OFFLINE=1``, or a hub that does not answer) only
the local cache is read, and a repository not in it fails at once with what to do.

Example:
    >>> from prisma_widgets.sae.hub import split_hub_name
    >>> split_hub_name("hf:Prisma-Multimodal/some-sae/layer_3")
    ('Prisma-Multimodal/some-sae', 'layer_3')
"""

from __future__ import annotations

import os
import re

from ..hooked.hub import cache_only, damaged_download, stay_local

_REPO = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
#: the files an SAE folder is made of (nothing else in a repository is downloaded)
SAE_FILES = ("*.json", "*.safetensors", "*.pt", "*.pth")


def split_hub_name(name: str) -> tuple[str, str]:
    """``(repo_id, folder)`` of ``"hf:<owner>/<repo>[/<folder>]"`` (``folder`` ``""`` for the repository's root)."""
    if not isinstance(name, str) or not name.startswith("hf:"):
        raise ValueError(f"a hub SAE is named 'hf:<owner>/<repo>[/<folder>]'; got {name!r}")
    parts = [p for p in name[3:].strip().split("/") if p]
    repo = "/".join(parts[:2])
    if len(parts) < 2 or not _REPO.match(repo) or any(p in (".", "..") for p in parts):
        raise ValueError(f"{name!r} is not a hub SAE name: use 'hf:<owner>/<repo>' or 'hf:<owner>/<repo>/<folder>', "
                         "e.g. 'hf:Prisma-Multimodal/my-sae' (an SAE-Lens or ViT-Prisma folder)")
    return repo, "/".join(parts[2:])


def download_sae(name: str) -> str:
    """The local folder holding the hub SAE ``name`` (downloaded into the hub cache if needed)."""
    repo, folder = split_hub_name(name)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ImportError(f"loading {name!r} needs huggingface_hub: pip install huggingface_hub") from None
    patterns = [f"{folder}/{p}" for p in SAE_FILES] if folder else list(SAE_FILES)
    local = stay_local()
    try:
        with cache_only(local):
            root = snapshot_download(repo, allow_patterns=patterns, local_files_only=local)
    except Exception as err:  # noqa: BLE001 - the hub client raises many kinds; each becomes one clear message
        damaged = damaged_download(name, err)
        if damaged is not None:
            raise damaged from None
        why = ("offline (HF_HUB_OFFLINE / PRISMA_WIDGETS_OFFLINE set, or the hub did not answer) and it is not in the "
               "local hub cache" if local else f"the download failed ({type(err).__name__}: {err})")
        raise OSError(
            f"cannot load the SAE {name!r}: {why}. Load it once on a machine with network (it is then cached), or "
            "download the folder yourself and pass its path to pw.SAE.load."
        ) from None
    path = os.path.join(root, folder) if folder else root
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{name!r}: the repository {repo!r} has no folder {folder!r} with SAE files "
                                f"({', '.join(SAE_FILES)})")
    return path
