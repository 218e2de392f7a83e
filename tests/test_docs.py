"""Every fenced ``python`` block of README.md and docs/*.md runs, and the docs stand alone.

Each block runs on its own in a fresh interpreter (blocks must be
self-contained). Blocks print their checks: a printed ``False`` fails the
test. A block that truly cannot run in the default suite (a secure ring with
heavy keys) is preceded by ``<!-- docs-test: skip <reason> -->``; one that
needs an optional package (torch) is skipped when it is missing.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md"] + sorted((ROOT / "docs").glob("*.md"))
BLOCK = re.compile(r"(<!--\s*docs-test:\s*skip\s*(?P<reason>[^>]*?)\s*-->\s*\n)?```(?P<lang>[\w+-]*)\n(?P<code>.*?)```",
                   re.S)
OPTIONAL = ("torch", "fastapi")


def _blocks():
    out = []
    for doc in DOCS:
        text = doc.read_text()
        for i, m in enumerate(BLOCK.finditer(text)):
            if m.group("lang") != "python":
                continue
            line = text.count("\n", 0, m.start("code")) + 1
            out.append(pytest.param(doc, m.group("code"), m.group("reason"),
                                    id=f"{doc.relative_to(ROOT)}:{line}"))
    return out


def test_there_are_blocks_to_run():
    assert len(_blocks()) >= 4


@pytest.mark.parametrize("doc,code,skip", _blocks())
def test_python_block_runs(doc, code, skip, tmp_path):
    if skip is not None:
        pytest.skip(skip or "marked skip in the markdown")
    for mod in OPTIONAL:
        if re.search(rf"^\s*(import|from)\s+{mod}\b", code, re.M) and importlib.util.find_spec(mod) is None:
            pytest.skip(f"the block needs {mod}, which is not installed")
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "2"))
    res = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=600)
    assert res.returncode == 0, f"{doc.name} block failed:\n{code}\n--- stderr ---\n{res.stderr[-3000:]}"
    assert not re.search(r"\bFalse\b", res.stdout), f"{doc.name} block printed a failed check:\n{res.stdout}"


LOCAL_NOTES = re.compile(r"\.\./shared|PAPER_NOTES|DESIGN\.md|STYLE\.md|SECURITY_NOTES|GPU_NOTES|ANCHORS\.md")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


@pytest.mark.parametrize("doc", DOCS, ids=lambda d: str(d.relative_to(ROOT)))
def test_docs_stand_alone(doc):
    text = doc.read_text()
    assert not LOCAL_NOTES.search(text), f"{doc.name} refers to notes outside the repository"
    for target in LINK.findall(text):
        if re.match(r"[a-z]+://", target):
            continue
        assert (doc.parent / target).resolve().exists(), f"{doc.name} links to {target}, which does not exist"
