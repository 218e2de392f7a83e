"""The include graph follows the layering of docs/ARCHITECTURE.md.

core -> runtime -> backend -> ckks: a layer includes only itself and the
layers below it; only cuda/ includes CUDA headers; every CUDA kernel body
lives in a shared header, so nothing under cpp/ is a .cu/.cuh file.
"""

import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parents[1]
ORDER = ["core", "runtime", "backend", "ckks", "circuits", "boot", "linalg"]
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)


def _includes(path: pathlib.Path):
    return INCLUDE.findall(path.read_text())


def test_layers_include_only_lower_layers():
    bad = []
    for rank, layer in enumerate(ORDER):
        allowed = set(ORDER[: rank + 1])
        for f in (ROOT / "cpp" / layer).rglob("*.[ch]pp"):
            for inc in _includes(f):
                top = inc.split("/")[0]
                if top in ORDER and top not in allowed:
                    bad.append(f"{f.relative_to(ROOT)} includes {inc}")
    assert not bad, "layering violations:\n" + "\n".join(bad)


def test_cuda_headers_only_under_cuda():
    bad = []
    for folder in ("cpp", "bindings"):
        for f in (ROOT / folder).rglob("*"):
            if f.suffix in (".cu", ".cuh"):
                bad.append(f"{f.relative_to(ROOT)} is a CUDA source outside cuda/")
            elif f.suffix in (".cpp", ".hpp"):
                for inc in _includes(f):
                    plain_api = inc.endswith("cuda_api.hpp")  # the backend's plain C++ interface
                    if (inc.startswith("cuda") and not plain_api) or inc.endswith(".cuh"):
                        bad.append(f"{f.relative_to(ROOT)} includes {inc}")
    assert not bad, "\n".join(bad)
