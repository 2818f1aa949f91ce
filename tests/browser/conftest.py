"""Browser fixtures shared by every widget's browser tests.

* ``browser``: headless Debian chromium driven by Playwright (no browser download exists here, so the
  system binary is launched). Missing chromium (or playwright) fails the test when ``CI=true`` and
  skips it otherwise.
* ``page``: a fresh page; console errors, page errors, dialogs and network requests are recorded on
  ``page.pw_log`` for the test to assert on. ``offline_page`` refuses every non-file request.
* ``jupyter_server``: a real JupyterLab on 127.0.0.1 (random port, token auth, temporary root,
  settings, workspaces and runtime dirs, no browser, no update checks).
* ``lab``: helpers to open a notebook in that server, run it, and talk to its kernel from Python.
* ``notebook_server`` and ``notebook7``: the same for a real Jupyter Notebook 7.
* ``serving``: run any other web server (the Panel app, marimo) until its URL answers.
* ``artifacts``: ``tests/artifacts/`` for screenshots (git-ignored).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


def _chromium_path() -> str | None:
    for candidate in (os.environ.get("PW_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


def _unavailable(reason: str) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (browser tests may not be skipped when CI=true)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    path = _chromium_path()
    if path is None:
        _unavailable("chromium is not installed (apt-get install -y chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
    except Exception as err:  # noqa: BLE001
        pw.stop()
        _unavailable(f"chromium did not start: {err}")
    yield b
    b.close()
    pw.stop()


@dataclass
class PageLog:
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return self.console_errors + self.page_errors + [f"dialog: {d}" for d in self.dialogs]


def _new_page(browser: Any, offline: bool, **context_kwargs: Any) -> tuple[Any, Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True, **context_kwargs)
    page = context.new_page()
    log = PageLog()
    page.on("console", lambda m: log.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: log.page_errors.append(str(e)))

    def on_dialog(d: Any) -> None:
        log.dialogs.append(d.message)
        d.dismiss()

    page.on("dialog", on_dialog)
    page.on("request", lambda r: log.requests.append(r.url))
    if offline:
        context.set_offline(True)

        def block(route: Any) -> None:
            if route.request.url.startswith(("file:", "data:", "blob:")):
                route.continue_()
            else:
                route.abort("internetdisconnected")

        context.route("**/*", block)
    page.pw_log = log
    return context, page


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context, p = _new_page(browser, offline=False)
    yield p
    context.close()


@pytest.fixture
def offline_page(browser: Any) -> Iterator[Any]:
    """A page whose context refuses every request that is not file:, data: or blob:."""
    context, p = _new_page(browser, offline=True)
    yield p
    context.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Any]:
    """Factory for extra pages with context options (color_scheme="dark", ...)."""
    contexts = []

    def make(offline: bool = True, **kwargs: Any) -> Any:
        context, p = _new_page(browser, offline=offline, **kwargs)
        contexts.append(context)
        return p

    yield make
    for c in contexts:
        c.close()


# --------------------------------------------------------------------------------------------------
# JupyterLab
# --------------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class JupyterServer:
    url: str
    token: str
    root: Path
    runtime_dir: Path
    proc: subprocess.Popen
    log_path: Path
    open_path: str  # the page that opens a notebook: "...{name}...{token}..."

    def api(self, path: str, method: str = "GET", body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            f"{self.url}{path}",
            data=data,
            method=method,
            headers={"Authorization": f"token {self.token}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
        return json.loads(raw) if raw else None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""


# what differs between the two Jupyter front ends this suite drives: module to run, its application class,
# extra flags, and the page that opens a notebook
JUPYTER_APPS: dict[str, dict[str, Any]] = {
    "lab": {
        "name": "JupyterLab",
        "module": "jupyterlab",
        "app": "LabApp",
        "flags": [
            "--LabApp.news_url=",
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
            "--LabApp.extension_manager=readonly",
        ],
        "open": "/lab/tree/{name}?token={token}&reset",
    },
    "notebook": {
        "name": "Notebook 7",
        "module": "notebook",
        "app": "JupyterNotebookApp",
        "flags": [],
        "open": "/notebooks/{name}?token={token}",
    },
}


def _jupyter_server(tmp_path_factory: pytest.TempPathFactory, kind: str) -> Iterator[JupyterServer]:
    """Start ``jupyter lab`` or ``jupyter notebook`` (``kind``) in temporary dirs; stop it after the yield."""
    spec = JUPYTER_APPS[kind]
    if _chromium_path() is None:
        _unavailable("chromium is not installed (apt-get install -y chromium)")
    try:
        __import__(spec["module"])
    except ImportError:
        _unavailable(f"{spec['name']} is not installed (pip install {spec['module']})")
    base = tmp_path_factory.mktemp(kind)
    root, runtime, settings, workspaces, config = (base / n for n in ("root", "runtime", "settings", "workspaces", "config"))
    for d in (root, runtime, settings, workspaces, config):
        d.mkdir()
    # no "get Jupyter news?" toast over the page (it can sit on top of what a test clicks)
    notif = settings / "@jupyterlab" / "apputils-extension"
    notif.mkdir(parents=True)
    (notif / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    # every cell stays rendered: with the default windowing, an output scrolled out of view is not laid out,
    # so a widget below a tall one would never paint and the test could not count it
    tracker = settings / "@jupyterlab" / "notebook-extension"
    tracker.mkdir(parents=True)
    (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    token = uuid.uuid4().hex
    port = _free_port()
    env = dict(os.environ)
    env.update(
        JUPYTER_RUNTIME_DIR=str(runtime),
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(workspaces),
        PYTHONUNBUFFERED="1",
    )
    log_path = base / "server.log"
    app = spec["app"]
    cmd = [
        sys.executable,
        "-m",
        spec["module"],
        "--ip=127.0.0.1",
        f"--port={port}",
        "--port-retries=0",
        "--no-browser",
        "--ServerApp.open_browser=False",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={root}",
        f"--{app}.user_settings_dir={settings}",
        f"--{app}.workspaces_dir={workspaces}",
        "--ServerApp.allow_remote_access=False",
        *spec["flags"],
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")  # containers and CI runners often run as root
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT, cwd=root)
    server = JupyterServer(f"http://127.0.0.1:{port}", token, root, runtime, proc, log_path, spec["open"])
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"{spec['name']} exited with {proc.returncode}:\n{server.log_tail()}")
        try:
            server.api("/api/status")
            break
        except Exception:  # noqa: BLE001
            if time.monotonic() > deadline:
                _stop(proc, grace=10)
                pytest.fail(f"{spec['name']} did not answer in 90 s:\n{server.log_tail()}")
            time.sleep(0.5)
    yield server
    _stop(proc, 20)


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A real JupyterLab 4 on 127.0.0.1."""
    yield from _jupyter_server(tmp_path_factory, "lab")


@pytest.fixture(scope="session")
def notebook_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JupyterServer]:
    """A real Jupyter Notebook 7 on 127.0.0.1 (same DOM for cells and outputs as JupyterLab)."""
    yield from _jupyter_server(tmp_path_factory, "notebook")


@contextlib.contextmanager
def serving(cmd: list[str], url: str, log_path: Path, timeout: float = 60.0) -> Iterator[str]:
    """Run ``cmd`` (a web server; offline mode on) until ``url`` answers 200, yield ``url``, stop it afterwards."""
    env = dict(os.environ, PRISMA_WIDGETS_OFFLINE="1", PYTHONUNBUFFERED="1")
    with open(log_path, "w") as log:
        proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{cmd[:4]} exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as r:
                    if r.status == 200:
                        break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{cmd[:4]} did not serve {url} in {timeout:.0f} s:\n{log_path.read_text()[-4000:]}")
                time.sleep(0.3)
        yield url
    finally:
        _stop(proc, 15)


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """Terminate a server we started; kill it if it has not exited after ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def wait_until(predicate: Any, timeout: float = 60.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until it returns something truthy (returned), or fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


def write_notebook(path: Path, cells: list[str]) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in cells]
    nbformat.write(nb, path)
    return path


class Lab:
    """Open and run notebooks in the JupyterLab (or Notebook 7) server, and reach their kernels from Python.

    Notebook 7 is built from JupyterLab's components: cells, prompts and output areas have the same classes,
    so only the page that opens a notebook differs (``JupyterServer.open_path``)."""

    def __init__(self, server: JupyterServer) -> None:
        self.server = server
        self._clients: list[Any] = []

    def open(self, page: Any, name: str, timeout_ms: int = 120_000) -> None:
        s = self.server
        page.goto(s.url + s.open_path.format(name=name, token=s.token), timeout=timeout_ms)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=timeout_ms)

    def run_all(self, page: Any, attempts: int = 6) -> None:
        """Run every cell from the top, as a user would (Shift+Enter on each).

        Keys pressed before the kernel's websocket is connected are lost, so this checks that every code
        cell with source has started (its prompt left ``[ ]``) and tries again if not.
        """
        page.wait_for_selector(".jp-Notebook .jp-Cell .jp-InputPrompt", timeout=60_000)
        all_started = """() => {
            const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')]
                .filter((c) => (c.querySelector('.jp-InputArea-editor')?.textContent ?? '').trim() !== '');
            return cells.length > 0 && cells.every((c) => !/\\[\\s*\\]/.test(c.querySelector('.jp-InputPrompt').textContent));
        }"""
        for _ in range(attempts):
            self.accept_dialogs(page)
            n = page.locator(".jp-Notebook .jp-Cell").count()
            page.locator(".jp-Notebook .jp-Cell .jp-InputPrompt").first.click()
            page.keyboard.press("Escape")  # command mode
            for _ in range(n):
                page.keyboard.press("Shift+Enter")
            try:
                page.wait_for_function(all_started, timeout=10_000)
                return
            except Exception:  # noqa: BLE001  (playwright TimeoutError)
                continue
        page.screenshot(path=str(ARTIFACTS / "run_all_failed.png"), full_page=True)
        raise AssertionError("the notebook's cells never started running")

    @staticmethod
    def accept_dialogs(page: Any) -> None:
        """Accept a JupyterLab dialog that covers the notebook (on a loaded machine, one sometimes opens as the
        workspace restores the previous test's notebook, e.g. about its kernel). It is JupyterLab's, not a
        widget's: its text goes to the log and a screenshot to the artifacts, and its default button is pressed."""
        for _ in range(3):
            dialog = page.locator(".jp-Dialog")
            try:
                dialog.first.wait_for(state="visible", timeout=1_500)
            except Exception:  # noqa: BLE001  (playwright TimeoutError: no dialog)
                return
            print(f"JupyterLab dialog accepted: {dialog.first.inner_text()!r}")
            page.screenshot(path=str(ARTIFACTS / "jupyterlab_dialog.png"))
            dialog.first.locator(".jp-Dialog-button.jp-mod-accept").first.click()
            dialog.first.wait_for(state="detached", timeout=10_000)

    def wait_for_widgets(self, page: Any, count: int, artifacts: Path, name: str, timeout_ms: int = 180_000) -> None:
        """Wait until ``count`` prisma widgets in the notebook's outputs have painted; on failure save a
        screenshot ``<name>_failed.png`` and fail with the server's log."""
        try:
            page.wait_for_function(
                f"() => document.querySelectorAll('.jp-OutputArea-output .pw-root[data-paints]').length >= {count}",
                timeout=timeout_ms,
            )
        except Exception:  # noqa: BLE001  (playwright TimeoutError)
            page.screenshot(path=str(artifacts / f"{name}_failed.png"), full_page=True)
            raise AssertionError(f"widgets did not render; server log:\n{self.server.log_tail()}") from None

    def kernel_client(self, notebook: str, timeout: float = 60.0) -> Any:
        """A BlockingKernelClient on the kernel of the open notebook (the same kernel the page uses)."""
        from jupyter_client import BlockingKernelClient

        deadline = time.monotonic() + timeout
        while True:
            sessions = [x for x in self.server.api("/api/sessions") if x.get("path", "").endswith(notebook)]
            if sessions and sessions[0].get("kernel"):
                kid = sessions[0]["kernel"]["id"]
                cf = self.server.runtime_dir / f"kernel-{kid}.json"
                if cf.exists():
                    break
            if time.monotonic() > deadline:
                raise TimeoutError(f"no kernel for {notebook}")
            time.sleep(0.5)
        kc = BlockingKernelClient(connection_file=str(cf))
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=timeout)
        self._clients.append(kc)
        return kc

    @staticmethod
    def evaluate(kc: Any, expression: str, timeout: float = 30.0) -> str:
        """The repr of a Python expression evaluated in the kernel."""
        msg_id = kc.execute("", silent=True, store_history=False, user_expressions={"v": expression})
        deadline = time.monotonic() + timeout
        while True:
            reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        value = reply["content"]["user_expressions"]["v"]
        if value.get("status") != "ok":
            raise RuntimeError(f"{expression!r} failed in the kernel: {value}")
        return value["data"]["text/plain"]

    @staticmethod
    def execute(kc: Any, code: str, timeout: float = 30.0) -> None:
        msg_id = kc.execute(code, store_history=False)
        deadline = time.monotonic() + timeout
        while True:
            reply = kc.get_shell_msg(timeout=max(0.1, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                break
        if reply["content"]["status"] != "ok":
            raise RuntimeError(f"kernel error: {reply['content']}")

    def close(self) -> None:
        for kc in self._clients:
            kc.stop_channels()
        # each test's kernel holds about 1 GB (torch, a model): shut them down rather than keep one per test
        # alive until the server stops, which on a CI machine adds up to an out-of-memory kill
        try:
            for kernel in self.server.api("/api/kernels") or []:
                self.server.api(f"/api/kernels/{kernel['id']}", method="DELETE")
        except OSError:
            pass  # the server is gone already: nothing left to free


@pytest.fixture
def lab(jupyter_server: JupyterServer) -> Iterator[Lab]:
    helper = Lab(jupyter_server)
    yield helper
    helper.close()


@pytest.fixture
def notebook7(notebook_server: JupyterServer) -> Iterator[Lab]:
    """The ``lab`` helpers, driving the Notebook 7 server."""
    helper = Lab(notebook_server)
    yield helper
    helper.close()


# --------------------------------------------------------------------------------------------------
# canvas helpers
# --------------------------------------------------------------------------------------------------
CANVAS_DIGEST_JS = """(el) => {
  const c = el.getContext('2d');
  const d = c.getImageData(0, 0, el.width, el.height).data;
  let h = 2166136261 >>> 0, s = 0;
  for (let i = 0; i < d.length; i += 4) { s += d[i] + d[i + 1] + d[i + 2]; h = Math.imul(h ^ (d[i] * 3 + d[i + 1] * 5 + d[i + 2] * 7), 16777619) >>> 0; }
  return [h, s];
}"""


def canvas_digest(locator: Any) -> tuple[int, int]:
    """(hash, sum) of a canvas' pixels: any change of what it shows changes the hash."""
    h, s = locator.evaluate(CANVAS_DIGEST_JS)
    return int(h), int(s)


def export_png(page: Any, target: Path) -> tuple[Any, dict[str, float]]:
    """Press the widget's PNG button, save the download to ``target`` and check that it is a PNG the size
    of the widget on screen. Returns ``(pixels [H, W, 3] int array, the widget root's bounding box)``."""
    import struct

    import numpy as np
    from PIL import Image

    with page.expect_download() as info:
        page.get_by_role("button", name="PNG").click()
    download = info.value
    assert download.suggested_filename.endswith(".png")
    download.save_as(target)
    raw = target.read_bytes()
    assert raw[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", raw[16:24])
    box = page.locator(".pw-root").bounding_box()
    assert (width, height) == (round(box["width"]), round(box["height"]))
    return np.asarray(Image.open(target).convert("RGB")).astype(int), box


def wait_painted(page: Any, root: str = ".pw-root", min_paints: int = 1, timeout_ms: int = 15_000) -> None:
    """Wait until the widget under ``root`` has painted at least ``min_paints`` times (its ``data-paints``)."""
    page.wait_for_function(
        f"() => {{ const r = document.querySelector('{root}'); return r && Number(r.dataset.paints || 0) >= {min_paints}; }}",
        timeout=timeout_ms,
    )
