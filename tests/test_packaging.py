"""The wheel and the sdist carry the built JS bundle (and the bundled weights); the sdist builds without node."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "prisma_widgets" / "static"


@pytest.mark.slow
def test_wheel_and_sdist_hold_the_bundle(tmp_path):
    bundle = sorted(p.name for p in STATIC.glob("*") if p.is_file())
    assert "attention_grid.js" in bundle, "build the JS first: cd js && npm ci && npm run build"
    # Only the virtual environment on PATH: no node, no npm. `python -m build` makes the sdist and then
    # the wheel from that sdist, so this also proves an sdist installs without node.
    env = {**os.environ, "PATH": str(Path(sys.executable).parent)}
    result = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(tmp_path), str(ROOT)],
        capture_output=True, text=True, env=env, timeout=600,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (wheel,) = tmp_path.glob("*.whl")
    (sdist,) = tmp_path.glob("*.tar.gz")
    wheel_names = set(zipfile.ZipFile(wheel).namelist())
    for name in bundle:
        assert f"prisma_widgets/static/{name}" in wheel_names
    # Shipped model weights travel too.
    for weights in (ROOT / "prisma_widgets").rglob("*.safetensors"):
        assert weights.relative_to(ROOT).as_posix() in wheel_names
    sdist_names = tarfile.open(sdist).getnames()
    assert any(n.endswith("prisma_widgets/static/attention_grid.js") for n in sdist_names)
    assert not any("node_modules" in n or "/.venv/" in n for n in sdist_names)
