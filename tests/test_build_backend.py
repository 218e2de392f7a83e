"""The build backend (tools/build_backend): concurrent builds of one checkout get their own build directory."""

from __future__ import annotations

import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
pytest.importorskip("scikit_build_core")
sys.path.insert(0, str(ROOT / "tools" / "build_backend"))
import hetensor_build  # noqa: E402

pytestmark = pytest.mark.skipif(hetensor_build.fcntl is None, reason="needs POSIX file locks")


def test_default_build_dir_matches_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    assert f'build-dir = "{hetensor_build.DEFAULT_BUILD_DIR}"' in text


def test_a_concurrent_build_gets_a_private_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with hetensor_build._own_build_dir({"build-dir": "build/dev", "x": "1"}) as first:
        assert first == {"build-dir": "build/dev", "x": "1"}  # the first build keeps the shared directory
        with hetensor_build._own_build_dir({"build-dir": "build/dev"}) as second:
            private = second["build-dir"]
            assert private != "build/dev" and private.startswith("build/dev-pid")
            (tmp_path / private).mkdir(parents=True)
        assert not (tmp_path / private).exists()  # removed after the build
        with hetensor_build._own_build_dir(None) as other:  # another directory: no conflict
            assert "build-dir" not in other
    with hetensor_build._own_build_dir({"build-dir": "build/dev"}) as again:  # released
        assert again["build-dir"] == "build/dev"
