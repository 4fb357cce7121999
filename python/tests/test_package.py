"""The distribution: versioned with the Rust workspace, a wheel that
builds without the network and imports on its own."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import milvus_backup

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent


def workspace_version() -> str:
    text = (REPO / "Cargo.toml").read_text()
    section = text.split("[workspace.package]", 1)[1].split("\n[", 1)[0]
    return re.search(r'^version\s*=\s*"([^"]+)"', section, re.M).group(1)


def test_versions_follow_the_rust_workspace():
    want = workspace_version()
    pyproject = (PYTHON_DIR / "pyproject.toml").read_text()
    assert re.search(r'^version\s*=\s*"([^"]+)"', pyproject, re.M).group(1) == want
    assert milvus_backup.__version__ == want


def test_the_wheel_builds_offline_and_imports_from_where_it_is_installed(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", str(tmp_path / "dist"), str(PYTHON_DIR)],
        check=True, capture_output=True, timeout=300,
    )
    (wheel,) = (tmp_path / "dist").glob("milvus_backup_sdk-*.whl")
    assert wheel.name == f"milvus_backup_sdk-{workspace_version()}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        meta = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    assert "milvus_backup/py.typed" in names and "milvus_backup/__init__.py" in names
    assert re.findall(r"^Requires-Dist: (.*)$", meta, re.M) == ["httpx>=0.23"]
    assert "Requires-Python: >=3.9" in meta and "Name: milvus-backup-sdk" in meta

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
        check=True, capture_output=True, timeout=300,
    )
    out = subprocess.run(
        [sys.executable, "-c", "import milvus_backup; print(milvus_backup.__version__); print(milvus_backup.__file__)"],
        cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(site)},
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.split()
    assert out[0] == workspace_version()
    assert out[1].startswith(str(site))
