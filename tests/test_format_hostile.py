"""Hostile inputs to every loader (issue 13): truncated, bit-flipped, huge
lengths, wrong types, wrong parameter hash or keys. Each must raise a clear
FormatError (or TypeError for a wrong Python type): never a crash, a hang or
a giant allocation. The whole corpus also runs in a child process whose
address space is capped, so a crash or a large allocation fails the test
instead of the suite."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import textwrap

import pytest

import hetensor as ht
from hostile import (batch_attacks, bit_flips, context_attacks, header_attacks, load_call, reseal, small_context,
                     valid_objects)


@pytest.fixture(scope="module")
def sctx():
    return small_context()


@pytest.fixture(scope="module")
def objects(sctx):
    return valid_objects(sctx)


def corpus(objects):
    for kind, data in objects.items():
        yield from ((kind, n, d) for n, d in header_attacks(data))
        yield from ((kind, n, d) for n, d in bit_flips(data))
        if kind.startswith(("ciphertext", "plaintext")):
            yield from ((kind, n, d) for n, d in batch_attacks(data))
        if kind.endswith("context") or kind.endswith("context-full") or kind == "params":
            yield from ((kind, n, d) for n, d in context_attacks(data))


def test_valid_objects_load(sctx, objects):
    load = load_call(sctx)
    for kind, data in objects.items():
        assert load(data) is not None, kind
        assert load(reseal(data)) is not None, kind  # resealing an intact object changes nothing


def test_every_hostile_input_raises_format_error(sctx, objects):
    load = load_call(sctx)
    count = 0
    for kind, name, data in corpus(objects):
        with pytest.raises(ht.FormatError):
            load(data)
            pytest.fail(f"{kind}: {name} loaded")
        count += 1
    assert count > 300


def test_messages_say_what_is_wrong(sctx, objects):
    load = load_call(sctx)
    ct = objects["ciphertext"]
    cases = dict(batch_attacks(ct))
    with pytest.raises(ht.FormatError, match="do not fit"):
        load(cases["batch 2^31-1"])
    with pytest.raises(ht.FormatError, match="outside the chain"):
        load(cases["level 99"])
    with pytest.raises(ht.FormatError, match="not below its prime"):
        load(cases["residue 2^64-1"])
    with pytest.raises(ht.FormatError, match="checksum"):
        load(ct[:-1] + bytes([ct[-1] ^ 1]))
    with pytest.raises(ht.FormatError, match="version"):
        load(dict(header_attacks(ct))["version 3"])
    with pytest.raises(ht.FormatError, match="version 1 .*ChaCha20"):
        load(dict(header_attacks(ct))["version 1"])
    with pytest.raises(ht.FormatError, match="magic"):
        load(dict(header_attacks(ct))["bad magic"])
    with pytest.raises(ht.FormatError, match="parameter hash"):
        load(dict(header_attacks(ct))["parameter hash"])


def test_a_context_cut_after_its_parameters_builds_no_tables(sctx, objects):
    """A short file with large parameters must not make the context's tables:
    the keys that the tables serve have to be present first."""
    from hostile import first_key_word, reseal

    data = objects["public-context"]
    cut = reseal(data[: first_key_word(data) + 64])
    with pytest.raises(ht.FormatError, match="keys of these parameters"):
        ht.load(cut, allow_insecure=True)


def test_parameters_with_a_non_ascii_name(objects):
    # the fuzzer's first finding: the core loader raised UnicodeDecodeError
    bad = dict(context_attacks(objects["params"]))["name not ascii"]
    with pytest.raises(ht.FormatError, match="ASCII"):
        ht._core.deserialize_params(bad)
    with pytest.raises(ht.FormatError, match="ASCII"):
        ht.load(dict(context_attacks(objects["public-context"]))["name not ascii"], allow_insecure=True)


def test_unsafe_skips_only_the_content_checks(sctx, objects):
    load = lambda d, **kw: ht.load(d, sctx, **kw)  # noqa: E731
    ct = objects["ciphertext"]
    # a flipped payload bit: caught by the checksum, accepted by the trusted path
    flipped = ct[:-1] + bytes([ct[-1] ^ 1])
    assert load(flipped, unsafe=True) is not None
    residue = dict(batch_attacks(ct))["residue 2^64-1"]
    assert load(residue, unsafe=True) is not None
    # metadata is checked on every path
    for name in ("batch 2^31-1", "level 99", "scale nan", "payload cut"):
        with pytest.raises(ht.FormatError):
            load(dict(batch_attacks(ct))[name], unsafe=True)
    with pytest.raises(ht.FormatError):
        load(dict(header_attacks(ct))["length 2^63"], unsafe=True)


def test_stream_with_a_huge_announced_length_reads_only_what_is_there(sctx, objects):
    data = dict(header_attacks(objects["ciphertext"]))["length 2^63"]
    with pytest.raises(ht.FormatError, match="truncated"):
        ht.load(io.BytesIO(data), sctx)


def test_wrong_python_types(sctx, objects):
    with pytest.raises(TypeError):
        ht.load(12345)
    with pytest.raises(TypeError):
        ht.load(objects["ciphertext"], context="not a context")
    with pytest.raises(TypeError):
        ht.from_bytes("a string is not bytes")
    with pytest.raises(TypeError):
        ht.to_bytes(object())
    with pytest.raises(TypeError):
        ht.load(io.StringIO("text"))


def test_object_of_another_type_is_refused_by_each_core_loader(sctx, objects):
    core, eng = ht._core, sctx._engine
    with pytest.raises(ht.FormatError, match="expected a plaintext"):
        core.deserialize_plaintext(eng, objects["ciphertext"])
    with pytest.raises(ht.FormatError, match="expected a ciphertext"):
        core.deserialize_ciphertext(eng, objects["plaintext"])
    with pytest.raises(ht.FormatError, match="expected a context"):
        core.deserialize_context(objects["ciphertext"], True)
    with pytest.raises(ht.FormatError, match="expected"):
        core.deserialize_blob(objects["ciphertext"])


def test_a_path_to_an_empty_or_foreign_file(tmp_path, sctx):
    (tmp_path / "empty").write_bytes(b"")
    (tmp_path / "foreign").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 100)
    for name in ("empty", "foreign"):
        with pytest.raises(ht.FormatError):
            ht.load(tmp_path / name, sctx)


def test_corpus_in_a_capped_child_process(tmp_path):
    """No input crashes the process or allocates more than 1 GiB beyond the start."""
    code = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import hetensor as ht
        import test_format_hostile as t
        from hostile import load_call, small_context, valid_objects
        ctx = small_context()
        objs = valid_objects(ctx)
        with open("/proc/self/status") as f:
            vm = [int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize")][0]
        resource.setrlimit(resource.RLIMIT_AS, (vm + (1 << 30), vm + (1 << 30)))
        load = load_call(ctx)
        n = bad = 0
        for kind, name, data in t.corpus(objs):
            n += 1
            try:
                load(data)
                bad += 1
                print("LOADED", kind, name)
            except ht.FormatError:
                pass
        print("inputs", n, "not refused", bad)
    """)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, (out.returncode, out.stderr[-3000:])
    assert "not refused 0" in out.stdout, out.stdout[-3000:]
