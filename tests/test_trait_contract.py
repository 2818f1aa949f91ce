"""The front end and Python agree on the synced traits.

Each widget's ``js/src/<name>/traits.ts`` lists the keys its view may read or set (``TRAIT_KEYS``; ``tsc``
checks the view's ``get`` / ``setTraits`` / ``onChange`` against the interface beside it). Here that list is
compared with the widget class's traits tagged ``sync=True``, leaving out ipywidgets' and anywidget's own
bookkeeping (``_model_name``, ``_view_*``, ``layout``, ``_esm`` ...). A trait renamed on one side only
fails here, naming the keys that differ.
"""

from __future__ import annotations

import importlib
import inspect
import pathlib
import pkgutil
import re

import anywidget
import pytest

import prisma_widgets.widgets as widgets_package

ROOT = pathlib.Path(__file__).resolve().parent.parent
JS_SRC = ROOT / "js" / "src"
SHARED_TRAITS = JS_SRC / "shared" / "traits.ts"

#: ipywidgets' and anywidget's own traits: the AnyWidget base class's synced traits, plus the ones anywidget
#: adds to each instance (``_esm``, ``_css``, ``_anywidget_id``); the same set as ``_INTERNAL_TRAITS`` in
#: ``prisma_widgets/widgets/_base.py`` minus the unsynced ``comm``, ``keys``, ``log``
BOOKKEEPING = frozenset(anywidget.AnyWidget.class_trait_names(sync=True)) | {"_esm", "_css", "_anywidget_id"}


def _widget_classes() -> dict[str, type]:
    """Every widget class in ``prisma_widgets/widgets/``, by its front-end name (``_widget_name``)."""
    found: dict[str, type] = {}
    for info in pkgutil.iter_modules(widgets_package.__path__):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{widgets_package.__name__}.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            name = getattr(cls, "_widget_name", "")
            if cls.__module__ == module.__name__ and issubclass(cls, anywidget.AnyWidget) and name:
                found[name] = cls
    return found


WIDGETS = _widget_classes()


def python_keys(cls: type) -> set[str]:
    return set(cls.class_trait_names(sync=True)) - BOOKKEEPING


_LIST = r"export\s+const\s+{name}\s*=\s*\[(?P<body>.*?)\]\s*as\s+const"


def _strip_comments(text: str) -> str:
    return re.sub(r"//[^\n]*|/\*.*?\*/", "", text, flags=re.S)


def parse_key_list(source: str, name: str = "TRAIT_KEYS", spreads: dict[str, list[str]] | None = None) -> list[str]:
    """The string literals of ``export const <name> = [...] as const`` in TypeScript ``source``, in order.

    ``...OTHER`` entries are replaced by ``spreads["OTHER"]``; anything else in the list is an error (so a
    list this parser misreads fails loudly instead of comparing as empty).
    """
    match = re.search(_LIST.format(name=re.escape(name)), _strip_comments(source), flags=re.S)
    if not match:
        raise ValueError(f"no `export const {name} = [...] as const` found")
    keys: list[str] = []
    for item in (x.strip() for x in match["body"].split(",")):
        if not item:
            continue
        literal = re.fullmatch(r"""(["'])([A-Za-z_][A-Za-z0-9_]*)\1""", item)
        spread = re.fullmatch(r"\.\.\.([A-Za-z_][A-Za-z0-9_]*)", item)
        if literal:
            keys.append(literal[2])
        elif spread and spreads is not None and spread[1] in spreads:
            keys.extend(spreads[spread[1]])
        else:
            raise ValueError(f"cannot read {item!r} in {name}")
    return keys


def ts_keys(widget: str) -> list[str]:
    base = parse_key_list(SHARED_TRAITS.read_text(encoding="utf-8"), "BASE_TRAIT_KEYS")
    path = JS_SRC / widget / "traits.ts"
    return parse_key_list(path.read_text(encoding="utf-8"), spreads={"BASE_TRAIT_KEYS": base})


def disagreement(python: set[str], ts: set[str], where: str) -> str:
    """A message naming only the keys that differ ("" when they agree)."""
    only_py = sorted(python - ts)
    only_ts = sorted(ts - python)
    if not only_py and not only_ts:
        return ""
    parts = []
    if only_py:
        parts.append(f"synced in Python but missing from {where}: {only_py}")
    if only_ts:
        parts.append(f"in {where} but no synced Python trait: {only_ts}")
    return "; ".join(parts)


def test_the_widgets_are_found():
    assert {"attention_grid", "logit_lens", "patching_heatmap", "feature_gallery"} <= set(WIDGETS), sorted(WIDGETS)


def test_every_widget_has_an_entry_and_a_trait_list():
    entries = {p.stem for p in JS_SRC.glob("*.ts") if not p.name.endswith(".d.ts")}
    assert entries == set(WIDGETS), f"js/src entries {sorted(entries)} vs widget classes {sorted(WIDGETS)}"
    missing = [w for w in WIDGETS if not (JS_SRC / w / "traits.ts").is_file()]
    assert not missing, f"no js/src/<widget>/traits.ts for {missing}"


@pytest.mark.parametrize("widget", sorted(WIDGETS))
def test_ts_trait_keys_are_the_python_sync_traits(widget):
    cls = WIDGETS[widget]
    keys = ts_keys(widget)
    assert len(keys) > 3, f"js/src/{widget}/traits.ts: the parser found only {keys}"
    assert {"theme", "colormap", "title"} <= set(keys), "BASE_TRAIT_KEYS was not spread into the list"
    dupes = sorted({k for k in keys if keys.count(k) > 1})
    assert not dupes, f"js/src/{widget}/traits.ts lists {dupes} twice"
    problem = disagreement(python_keys(cls), set(keys), f"js/src/{widget}/traits.ts")
    assert not problem, f"{cls.__name__}: {problem}"


def test_the_base_keys_are_the_base_widget_traits():
    """``BASE_TRAIT_KEYS`` (js/src/shared/traits.ts) are the synced traits of the widgets' common base class."""
    classes = list(WIDGETS.values())
    common_base = next(b for b in inspect.getmro(classes[0]) if all(issubclass(c, b) for c in classes))
    assert common_base is not anywidget.AnyWidget, "the widgets share no base class of their own"
    base = parse_key_list(SHARED_TRAITS.read_text(encoding="utf-8"), "BASE_TRAIT_KEYS")
    assert base, "the parser found no BASE_TRAIT_KEYS"
    problem = disagreement(python_keys(common_base), set(base), "BASE_TRAIT_KEYS")
    assert not problem, f"{common_base.__name__}: {problem}"


def test_the_parser_reads_literals_spreads_and_comments():
    source = """
    export const BASE = ["a"] as const;
    export const TRAIT_KEYS = [
      ...BASE,
      "b", // a comment, "not_a_key"
      /* "nor_this" */ 'c',
      "d",
    ] as const;
    """
    assert parse_key_list(source, spreads={"BASE": ["a"]}) == ["a", "b", "c", "d"]
    assert parse_key_list(source, "BASE") == ["a"]


def test_the_parser_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="no `export const TRAIT_KEYS"):
        parse_key_list("export const KEYS = ['a'] as const;")
    with pytest.raises(ValueError, match="cannot read"):
        parse_key_list('export const TRAIT_KEYS = [...UNKNOWN, "a"] as const;')
    with pytest.raises(ValueError, match="cannot read"):
        parse_key_list('export const TRAIT_KEYS = [`a${b}`] as const;')


def test_a_disagreement_names_the_keys_on_each_side_only():
    message = disagreement({"layer", "head", "query"}, {"layer", "head", "qurey"}, "traits.ts")
    assert message == "synced in Python but missing from traits.ts: ['query']; in traits.ts but no synced Python trait: ['qurey']"
    assert "layer" not in message and "head" not in message
    assert disagreement({"a"}, {"a"}, "traits.ts") == ""
