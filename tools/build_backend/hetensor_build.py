"""PEP 517 backend: scikit-build-core, with incremental rebuilds and one build at a time per build directory.

scikit-build-core keeps its CMake build directory (``build-dir`` in
pyproject.toml, or ``-Cbuild-dir=...``) between pip calls, but it clears the
CMake cache (and with it every object file) when the build runs in a new
isolated environment, as each ``pip install .`` does: it records the path of
its own package, which lives in that throwaway environment. When the recorded
scikit-build-core is the same version, this backend points the record at the
current one, so a pip call recompiles only what changed (CMakeLists.txt keeps
the pybind11 headers at a fixed path for the same reason).

Two builds of one checkout running at once would both write into the build
directory; the first holds a lock on it and a concurrent one builds in a
private directory of its own (a full build), removed afterwards.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import shutil
from typing import Any, Dict, Iterator, Optional

import scikit_build_core
from scikit_build_core import build as _skb
from scikit_build_core.build import (  # noqa: F401  (re-exported hooks)
    build_sdist,
    get_requires_for_build_editable,
    get_requires_for_build_sdist,
    get_requires_for_build_wheel,
    prepare_metadata_for_build_editable,
    prepare_metadata_for_build_wheel,
)

try:
    import fcntl
except ImportError:  # not POSIX: no locking
    fcntl = None

DEFAULT_BUILD_DIR = "build/{wheel_tag}"  # keep in step with [tool.scikit-build] build-dir


@contextlib.contextmanager
def _own_build_dir(settings: Optional[Dict[str, Any]]) -> Iterator[Dict[str, Any]]:
    settings = dict(settings or {})
    pattern = str(settings.get("build-dir") or DEFAULT_BUILD_DIR)
    if fcntl is None:
        yield settings
        return
    os.makedirs("build", exist_ok=True)
    lock_path = os.path.join("build", "." + re.sub(r"[^\w.-]", "_", pattern) + ".lock")
    with open(lock_path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            private = f"{pattern}-pid{os.getpid()}"
            print(f"hetensor build: {pattern} is in use by another build; building in {private}", flush=True)
            settings["build-dir"] = private
            try:
                yield settings
            finally:
                for path in _expanded(private):
                    shutil.rmtree(path, ignore_errors=True)
            return
        try:
            _keep_cache(pattern)
            yield settings
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _expanded(pattern: str):
    """Directories that a build-dir pattern with {placeholders} became."""
    return glob.glob(re.sub(r"\{[^}]*\}", "*", pattern))


def _keep_cache(pattern: str) -> None:
    """Lets scikit-build-core reuse a build directory made by the same version in another isolated environment."""
    here = os.path.dirname(os.path.abspath(scikit_build_core.__file__))
    for build_dir in _expanded(pattern):
        path = os.path.join(build_dir, ".skbuild-info.json")  # scikit-build-core's record of the last build
        try:
            with open(path, encoding="utf-8") as f:
                info = json.load(f)
            same = info.get("skbuild_version") == scikit_build_core.__version__
            if same and info.get("skbuild_path") != here and not os.path.isdir(info.get("skbuild_path", "")):
                info["skbuild_path"] = here
                with open(path, "w", encoding="utf-8") as f:
                    json.dump(info, f, indent=2)
        except (OSError, ValueError, AttributeError):
            continue  # no record, or one we do not understand: scikit-build-core decides


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    with _own_build_dir(config_settings) as settings:
        return _skb.build_wheel(wheel_directory, settings, metadata_directory)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    with _own_build_dir(config_settings) as settings:
        return _skb.build_editable(wheel_directory, settings, metadata_directory)
