"""The committed widget bundle (labnb/static) is exactly what js/ builds to.

pip installs never run Node: the bundle is committed. This test rebuilds it
from js/ into a temporary folder (esbuild's output is byte-identical for the
same input) and fails when someone edited js/ without rebuilding, or edited
the bundle by hand. It also runs the front ends' own unit tests (node --test).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from requirements import unavailable

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "labnb" / "static"


def node_tools() -> str:
    node = shutil.which("node")
    if node is None or not (ROOT / "node_modules" / "esbuild").exists():
        unavailable("node and `npm ci` are needed to check the widget bundle")
    return node


def test_committed_bundle_matches_a_fresh_build(tmp_path):
    node = node_tools()
    subprocess.run([node, "js/build.mjs", str(tmp_path)], cwd=ROOT, check=True, capture_output=True)
    built = sorted(path.name for path in tmp_path.iterdir())
    assert built == sorted(path.name for path in STATIC.iterdir())
    for name in built:
        assert (tmp_path / name).read_bytes() == (STATIC / name).read_bytes(), (
            f"labnb/static/{name} is stale: run `npm run build` and commit the result"
        )


def test_front_end_unit_tests():
    node = node_tools()
    tests = sorted(
        str(path.relative_to(ROOT)) for path in (ROOT / "js" / "test").glob("*.test.mjs")
    )
    result = subprocess.run([node, "--test", *tests], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_wheel_and_sdist_carry_the_bundle(tmp_path):
    """pip installs from a wheel, an sdist or git never run Node: the bundle must be in them."""
    import tarfile
    import zipfile

    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(ROOT)],
        check=True,
    )
    (wheel,) = tmp_path.glob("labnb-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for name in ("run_view.js", "cache_view.js", "widget.css"):
        assert f"labnb/static/{name}" in names
    assert not any(name.startswith(("js/", "tests/", "node_modules/")) for name in names)

    subprocess.run(
        [sys.executable, "-m", "hatchling", "build", "-t", "sdist", "-d", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (sdist,) = tmp_path.glob("labnb-*.tar.gz")
    with tarfile.open(sdist) as archive:
        members = archive.getnames()
    assert any(member.endswith("labnb/static/run_view.js") for member in members)
    assert not any("/node_modules/" in member or "/.venv/" in member for member in members)
