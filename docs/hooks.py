"""mkdocs hooks: what the docs site generates at build time (configured in mkdocs.yml under ``hooks:``).

- one page per widget in :data:`WIDGETS`, with the widget's live embed in an iframe: the entry's code runs
  on a bundled model and ``widget.save_html`` makes ``embeds/<name>.html`` in the site (self-contained,
  so the site needs no kernel and no network); the saved page posts its content height and
  ``docs/javascripts/pw_embeds.js`` sizes the frame to it (no clipped widget, no scrolling inside the frame);
- the tutorials (``tutorials/*.ipynb``), executed here (:func:`execute_tutorial`, on the bundled mice when the
  hub cannot be reached) and rendered by mkdocs-jupyter WITH their outputs: with
  ``PRISMA_WIDGETS_STATIC_HTML=1`` each widget's display also carries its saved page in a sandboxed iframe,
  which the rendered page shows (no widget state, no widget manager, nothing from a CDN).
  ``PRISMA_WIDGETS_DOCS_EXECUTE=0`` renders them unexecuted (tests/test_docs.py: fast); a comma-separated
  list of names (``01_attention_heads``) executes only those. The site's ``.ipynb`` downloads are the
  originals, without outputs;
- the bundled models' cards (``prisma_widgets/zoo/cards/*.md``), one page each, never copied by hand;
- the nav sections that list them (left empty in mkdocs.yml).

Notebook pages get no script from a CDN: the MathJax and mermaid loaders nbconvert adds are removed.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.prisma_widgets")

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = ROOT / "tutorials"
CARDS = ROOT / "prisma_widgets" / "zoo" / "cards"
EMBED_DIR = "embeds"
API_WIDGETS = "<!-- the widgets: docs/hooks.py -->"
EXECUTE_ENV = "PRISMA_WIDGETS_DOCS_EXECUTE"  # "1" (default) all tutorials, "0" none, or "name,name"
STATIC_HTML_ENV = "PRISMA_WIDGETS_STATIC_HTML"  # prisma_widgets.widgets.standalone.STATIC_HTML_ENV  # in api.md, replaced by one entry per built widget


@dataclass(frozen=True)
class Widget:
    name: str  # module in prisma_widgets/widgets/ and the embed's file name
    cls: str  # the class, exported as prisma_widgets.<cls>
    code: str | None  # builds `widget`; shown on the page and run at build time. None: not built yet
    # the iframe's height before its page reports its own (docs/javascripts/pw_embeds.js): what the embed measured
    # at the docs' content width (tests/browser/test_docs_embeds.py), so the page does not jump
    height: int = 640

    @property
    def path(self) -> str:
        return f"prisma_widgets.widgets.{self.name}.{self.cls}"


_HEADER = "import prisma_widgets as pw\nfrom prisma_widgets import zoo\n\n"

WIDGETS: list[Widget] = [
    Widget(
        "attention_grid",
        "AttentionGrid",
        _HEADER
        + 'model = pw.load("mouse-vit")          # bundled: no download\n'
        + "scenes = zoo.scenes(3, seed=1)        # synthetic shapes with per-patch ground truth\n"
        + "widget = pw.AttentionGrid(model, list(scenes.images), image_labels=scenes.captions)\n",
        height=910,
    ),
    Widget(
        "logit_lens",
        "LogitLens",
        _HEADER
        + 'model = pw.load("mouse-clip")                                 # bundled CLIP\n'
        + "scene = zoo.scenes(1, seed=2).images[0]\n"
        + "prompts = [zoo.PROMPT.format(shape) for shape in zoo.SHAPE_CLASSES]\n"
        + "widget = pw.LogitLens(model, scene, prompts=prompts)\n",
        height=890,
    ),
    Widget(
        "patching_heatmap",
        "PatchingHeatmap",
        "import numpy as np\n"
        + "import prisma_widgets as pw\n"
        + "from prisma_widgets.zoo.shapes import shapes_with_patches\n\n"
        + 'model = pw.load("mouse-vit")\n'
        + "images, labels, patches = shapes_with_patches(32, seed=3)\n"
        + "i = labels.index(0)                   # a circle: mask its own patches\n"
        + "object_patches = [tuple(p) for p in np.argwhere(patches[i] > 0)]\n"
        + 'corrupted = pw.corrupt(images[i], object_patches, mode="mask", model=model)\n'
        + "widget = pw.PatchingHeatmap(model, images[i], corrupted)\n",
        height=1320,
    ),
    Widget(
        "feature_gallery",
        "FeatureGallery",
        _HEADER
        + "import tempfile\n\n"
        + 'model = pw.load("mouse-vit")\n'
        + "images, labels = zoo.shapes(300, seed=1)\n"
        + 'hook = "blocks.3.hook_resid_post"\n'
        + "store = pw.cache_activations(model, images, hook, tempfile.mkdtemp(), progress=False)\n"
        + "sae = pw.train_sae(store, expansion=4, k=16, batch_size=1024, steps=300, progress=False)\n"
        + "widget = pw.FeatureGallery(model, sae, images[:120])\n",
        height=1920,
    ),
    Widget(
        "logit_attribution",
        "LogitAttribution",
        _HEADER
        + 'model = pw.load("mouse-vit")\n'
        + "scene = zoo.scenes(1, seed=2).images[0]\n"
        + "widget = pw.LogitAttribution(model, scene)   # the predicted class; pick another, or a pair\n",
        height=570,
    ),
]


def built_widgets() -> list[Widget]:
    return [w for w in WIDGETS if w.code is not None]


def _save_line(w: Widget) -> str:
    return f'widget.save_html("{w.name}.html")   # one self-contained file: this page\'s embed\n'


def widget_page(w: Widget) -> str:
    """The markdown of a widget's page: the embed, the code that made it, the module's docstring."""
    return textwrap.dedent(
        f"""\
        # {w.cls}

        <iframe class="pw-embed" src="../{EMBED_DIR}/{w.name}.html" title="{w.cls} on a bundled model"
                loading="lazy" style="width: 100%; height: {w.height}px; border: 1px solid #8884;"></iframe>

        A live page saved with `widget.save_html`: no kernel, so the view works and nothing goes back to
        Python. [Open it alone]({{embed}}). It was made at docs build time by:

        ```python
        {{code}}```

        ::: prisma_widgets.widgets.{w.name}
            options:
              show_root_heading: false
              show_root_toc_entry: false
              members: false

        Arguments and synced traits: [`{w.cls}`][{w.path}] in the API reference.
        """
    ).format(embed=f"../{EMBED_DIR}/{w.name}.html", code=w.code + _save_line(w))


def build_embed(w: Widget) -> bytes:
    """Run the entry's code and save its ``widget``: the bytes of one self-contained HTML page."""
    start = time.perf_counter()
    namespace: dict = {}
    exec(compile(w.code, f"<docs widget {w.name}>", "exec"), namespace)
    with tempfile.TemporaryDirectory() as tmp:
        path = namespace["widget"].save_html(Path(tmp) / f"{w.name}.html", title=f"prisma_widgets {w.cls}")
        page = path.read_bytes()
    log.info("embed %s.html: %d kB in %.1f s", w.name, len(page) // 1024, time.perf_counter() - start)
    return page


# ---------------------------------------------------------------------------------------------------
def _tutorials() -> list[Path]:
    return sorted(TUTORIALS.glob("*.ipynb"))


def executed(path: Path) -> bool:
    """Whether the build executes this tutorial (``PRISMA_WIDGETS_DOCS_EXECUTE``)."""
    value = os.environ.get(EXECUTE_ENV, "1").strip()
    if value in ("", "1"):
        return True
    if value == "0":
        return False
    return path.stem in {name.strip().removesuffix(".ipynb") for name in value.split(",")}


def execute_tutorial(path: Path, out_dir: Path, timeout: int = 900) -> Path:
    """Run the notebook at ``path`` top to bottom (a real kernel, working folder a temporary one) with
    ``PRISMA_WIDGETS_STATIC_HTML=1``, and write it, with its outputs, to ``out_dir / path.name``.

    The widgets' displays then carry their saved pages as ``text/html``; no widget state is stored, so
    nbconvert renders that html (and no widget manager from a CDN). An error in a cell fails the build.
    """
    import nbformat
    from nbclient import NotebookClient

    start = time.perf_counter()
    notebook = nbformat.read(path, as_version=4)
    before = os.environ.get(STATIC_HTML_ENV)
    os.environ[STATIC_HTML_ENV] = "1"  # the kernel inherits this process's environment
    try:
        with tempfile.TemporaryDirectory() as work:
            client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", store_widget_state=False,
                                    resources={"metadata": {"path": work}})
            client.execute()
    finally:
        if before is None:
            os.environ.pop(STATIC_HTML_ENV, None)
        else:
            os.environ[STATIC_HTML_ENV] = before
    notebook.metadata.pop("widgets", None)
    out = Path(out_dir) / path.name
    nbformat.write(notebook, out)
    log.info("tutorial %s executed in %.1f s: %d kB", path.name, time.perf_counter() - start, out.stat().st_size // 1024)
    return out


def _cards() -> list[Path]:
    return sorted(CARDS.glob("*.md"))


def _fill(nav: list, section: str, items: list) -> None:
    for entry in nav:
        if isinstance(entry, dict) and section in entry:
            current = entry[section]
            head = [current] if isinstance(current, str) else list(current)
            entry[section] = head + items
            return
    raise ValueError(f"mkdocs.yml nav has no section {section!r} for docs/hooks.py to fill")


def on_config(config):
    _fill(config.nav, "Widgets", [{w.cls: f"widgets/{w.name}.md"} for w in built_widgets()])
    _fill(config.nav, "Tutorials", [f"tutorials/{p.name}" for p in _tutorials()])
    _fill(config.nav, "Bundled models", [f"models/{p.name}" for p in _cards()])
    return config


_RUN_DIRS: list[Path] = []  # the executed tutorials of this build


@event_priority(100)  # before mkdocs-jupyter's on_files, which takes over the .ipynb files
def on_files(files: Files, config) -> Files:
    for w in built_widgets():
        files.append(File.generated(config, f"widgets/{w.name}.md", content=widget_page(w)))
        files.append(File.generated(config, f"{EMBED_DIR}/{w.name}.html", content=build_embed(w)))
    run_dir = Path(tempfile.mkdtemp(prefix="pw-docs-tutorials-"))  # removed in on_post_build
    _RUN_DIRS.append(run_dir)
    for p in _tutorials():
        if executed(p):
            (run_dir / "tutorials").mkdir(exist_ok=True)
            execute_tutorial(p, run_dir / "tutorials")
            files.append(File(f"tutorials/{p.name}", str(run_dir), config.site_dir, config.use_directory_urls))
        else:
            files.append(File(f"tutorials/{p.name}", str(ROOT), config.site_dir, config.use_directory_urls))
    for p in _cards():
        files.append(File.generated(config, f"models/{p.name}", abs_src_path=str(p)))
    return files


# nbconvert's page header loads MathJax (from cdnjs, or src="" when no URL is set) and, when a notebook
# has diagrams, mermaid from cdnjs
_CDN_SCRIPT = re.compile(
    r"<script[^>]*\bsrc=[\"'](?:https?://[^\"']*)?[\"'][^>]*>\s*</script>"
    r"|<script[^>]*>(?:(?!</script>).)*?import\(\s*[\"']https?://(?:(?!</script>).)*</script>",
    re.S | re.I,
)


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri == "api.md":
        entries = "\n\n".join(f"::: {w.path}" for w in built_widgets())
        markdown = markdown.replace(API_WIDGETS, entries)
    return markdown


def strip_cdn_scripts(html: str) -> str:
    """A rendered notebook without the script tags nbconvert adds that load from a CDN (or from src="")."""
    return _CDN_SCRIPT.sub("", html)


def on_page_content(html: str, page, config, files) -> str:
    if page.file.src_uri.endswith(".ipynb"):
        html = strip_cdn_scripts(html)
    return html



def on_post_build(config) -> None:
    # the download button offers the tutorial as written (mkdocs-jupyter copied the executed one)
    for p in _tutorials():
        target = Path(config.site_dir) / "tutorials" / p.name
        if target.parent.is_dir():
            shutil.copyfile(p, target)
    while _RUN_DIRS:
        shutil.rmtree(_RUN_DIRS.pop(), ignore_errors=True)
