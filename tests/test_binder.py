"""Binder's install, reproduced: a fresh virtual environment, ``pip install -r binder/requirements.txt``,
``binder/postBuild`` (npm builds the widgets' JavaScript, pip installs the package from the repository),
then ``tutorials/00_quickstart.ipynb`` executed by nbclient in a kernel of that environment.

Slow (minutes: torch alone is a large install) and it needs npm and a package index; it copies the
repository's files (what a clone has: tracked and not ignored) so nothing built here leaks in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.notebooks]

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "tutorials/00_quickstart.ipynb"
URLPATH = "lab/tree/" + NOTEBOOK

EXECUTE = r"""
import json, sys
import nbformat
from nbclient import NotebookClient

nb = nbformat.read(sys.argv[1], as_version=4)
nb.cells.append(nbformat.v4.new_code_cell(
    "import sys, prisma_widgets, json\n"
    "print(json.dumps({'python': sys.executable, 'package': prisma_widgets.__file__}))"))
NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, sys.argv[3])
"""


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float, log: Path) -> float:
    t0 = time.monotonic()
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(map(str, cmd))}\n")
        out.flush()
        proc = subprocess.run(cmd, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, timeout=timeout,
                              check=False)
    if proc.returncode != 0:
        pytest.fail(f"{' '.join(map(str, cmd))} exited with {proc.returncode}:\n{log.read_text()[-6000:]}")
    return time.monotonic() - t0


def _clone(dest: Path) -> None:
    """Copy what a clone of the repository holds (tracked files and new files git does not ignore)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=REPO, capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        src = REPO / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)


def test_binder_files_point_at_the_quickstart():
    assert (REPO / NOTEBOOK).exists()
    assert os.access(REPO / "binder" / "postBuild", os.X_OK), "postBuild must be executable"
    reqs = (REPO / "binder" / "requirements.txt").read_text()
    assert "torch==2.14.1" in reqs and "torchvision==0.29.1" in reqs  # as scripts/test.sh pins them
    assert f"urlpath={URLPATH}" in (REPO / "binder" / "README.md").read_text()


def test_binder_install_runs_the_quickstart(tmp_path: Path):
    for tool in ("git", "npm"):
        if shutil.which(tool) is None:  # scripts/test.sh installs both; only a hand-run may lack them
            if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
                pytest.fail(f"{tool} is not installed (this test may not be skipped when CI=true)")
            pytest.skip(f"{tool} is not installed")
    repo, venv, log = tmp_path / "repo", tmp_path / "venv", tmp_path / "binder.log"
    _clone(repo)
    assert not (repo / "prisma_widgets" / "static" / "attention_grid.js").exists()  # the build must make it
    bin_dir = venv / "bin"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
    # The CPU index in requirements.txt is unreachable offline: fail over to the default index at once.
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", VIRTUAL_ENV=str(venv), PIP_RETRIES="0",
               PRISMA_WIDGETS_OFFLINE="1", HF_HUB_OFFLINE="1")
    times = {}
    times["venv"] = _run([sys.executable, "-m", "venv", str(venv)], tmp_path, env, 120, log)
    py = str(bin_dir / "python")
    times["requirements"] = _run([py, "-m", "pip", "install", "-r", "binder/requirements.txt"], repo, env, 1800, log)
    times["postBuild"] = _run(["bash", "binder/postBuild"], repo, env, 1200, log)
    out = tmp_path / "quickstart.ipynb"
    times["quickstart"] = _run([py, "-c", EXECUTE, str(repo / NOTEBOOK), str(repo / "tutorials"), str(out)],
                               repo, env, 900, log)
    print("binder install, seconds:", {k: round(v) for k, v in times.items()})

    nb = json.loads(out.read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    errors = [o for c in code for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, errors
    widgets = [c for c in code for o in c.get("outputs", [])
               if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert len(widgets) >= 2, "the quickstart's widgets were not displayed"
    where = json.loads("".join(code[-1]["outputs"][0]["text"]))
    # the kernel ran in the new environment, on the package installed there (not this checkout)
    assert Path(where["python"]).parent == bin_dir
    package = Path(where["package"]).parent
    assert venv in package.parents and (package / "static" / "attention_grid.js").exists()
