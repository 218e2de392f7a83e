"""Binary format round trips (issue 13): every object type, compression,
pickle, files and streams, public contexts, and a server in another process
that evaluates with a loaded public context while the client decrypts."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hetensor as ht
from conftest import bits

X = np.linspace(-1, 1, 50)


@pytest.fixture(scope="module")
def ctx():
    return ht.Context.from_preset("toy-insecure", rotations=[1, 3], conjugation=True, seed=77)


@pytest.fixture(scope="module")
def pub(ctx):
    return ctx.public()


def test_ciphertext_round_trip_keeps_values_and_metadata(ctx):
    x = ctx.encrypt(X)
    y = x * x + 0.25
    z = ht.load(y.to_bytes())
    assert z.context is ctx and z.shape == y.shape
    assert (z.level, z.scale, z._ct.bound) == (y.level, y.scale, y._ct.bound)
    assert bits(ctx.decrypt(z), X * X + 0.25) > 20
    assert np.array_equal(ctx.decrypt(z), ctx.decrypt(y))


def test_tracked_range_survives(ctx):
    y = ctx.encrypt(X) * 0.5 + 0.25
    z = ht.load(y.to_bytes())
    assert z.value_range == y.value_range
    assert z.value_range[1] <= float(z._ct.bound)


def test_complex_and_batched_tensors(ctx):
    c = (np.arange(3000) / 3000.0 + 0.5j).reshape(30, 100)
    t = ctx.encrypt(c)
    assert t.num_ciphertexts == 2
    back = ht.load(t.to_bytes(), ctx)
    out = ctx.decrypt(back)
    assert out.dtype == np.complex128 and out.shape == (30, 100) and bits(out, c) > 25


def test_matrix_layout_survives(ctx):
    m = np.arange(12.0).reshape(3, 4) / 12
    t = ctx.encrypt(m, layout="matrix")
    back = ht.load(t.to_bytes())
    assert back._layout == t._layout and bits(ctx.decrypt(back), m) > 25


def test_symmetric_ciphertext_is_stored_as_seeds(ctx):
    sym = ctx.encrypt(X, symmetric=True)
    full = sym.to_bytes(compress=False)
    small = sym.to_bytes()
    assert abs(len(small) / len(full) - 0.5) < 0.01
    back = ht.load(small)
    # the expansion regenerates c_1 bit for bit
    assert back.to_bytes(compress=False) == full
    assert bits(ctx.decrypt(back), X) > 25


def test_evaluated_symmetric_ciphertext_is_stored_in_full(ctx):
    sym = ctx.encrypt(X, symmetric=True)
    moved = sym.level_to(sym.level - 1)  # c_1 no longer equals its seed's expansion
    assert len(moved.to_bytes()) > 0.9 * len(moved.to_bytes(compress=False))
    assert bits(ctx.decrypt(ht.load(moved.to_bytes())), X) > 25


def test_public_key_ciphertext_is_not_compressible(ctx):
    t = ctx.encrypt(X)
    assert len(t.to_bytes()) == len(t.to_bytes(compress=False))


def test_plaintext_round_trip(ctx):
    x = ctx.encrypt(X)
    w = ctx.encode(X[::-1], level=x.level)
    w2 = ht.load(w.to_bytes())
    assert w2.purpose == "multiply" and w2.level == w.level and w2.shape == w.shape
    assert bits(ctx.decrypt(x * w2), X * X[::-1]) > 20


def test_plain_matrix_round_trip(ctx):
    w = np.arange(20.0).reshape(4, 5) / 20
    pm = ht.PlainMatrix(ctx, w, name="w", cache=False)
    back = ht.load(pm.to_bytes())
    assert isinstance(back, ht.PlainMatrix) and back.name == "w" and np.array_equal(back.array, pm.array)
    assert back.cache is False
    kctx = ht.Context.from_preset("toy-insecure", seed=5, auto_keys=True)
    back = ht.load(ht.PlainMatrix(kctx, w).to_bytes())
    x = np.linspace(-1, 1, 12).reshape(3, 4)
    assert bits(kctx.decrypt(kctx.encrypt(x, layout="matrix") @ back), x @ w) > 18


def test_public_context_round_trip_and_compression(ctx, pub):
    full = pub.to_bytes(compress=False)
    small = pub.to_bytes()
    # every key's uniform half becomes a 32-byte seed
    assert 0.49 < len(small) / len(full) < 0.51
    loaded = ht.load(small, allow_insecure=True)
    assert loaded.is_public and loaded.rotation_steps == ctx.rotation_steps
    assert loaded.to_bytes(compress=False) == full
    x = loaded.encrypt(X)
    y = (x * x).rotate(3).conjugate()
    ref = np.roll(np.concatenate([X * X, np.zeros(ctx.slots - X.size)]), -3)[: X.size]
    assert bits(ctx.decrypt(ht.load(y.to_bytes(), ctx)), ref) > 20


def test_parameters_alone(ctx):
    data = ctx.to_bytes(params_only=True)
    assert len(data) < 1000  # no keys
    d = ht.load(data)
    again = ht.Context.from_params(**d, seed=1)
    assert again._engine.params_hash == ctx._engine.params_hash
    boot = ht.load(ht.Context.from_preset("toy-boot-insecure", seed=2).to_bytes(params_only=True))
    assert len(boot["level_bits"]) == 20


def test_insecure_context_needs_allow_insecure(pub):
    with pytest.raises(ht.SecurityError, match="allow_insecure"):
        ht.load(pub.to_bytes())


def test_public_context_cannot_decrypt_or_make_keys(pub):
    t = pub.encrypt(X)
    with pytest.raises(ValueError, match="public"):
        pub.decrypt(t)
    with pytest.raises(ValueError, match="public"):
        pub.encrypt(X, symmetric=True)
    with pytest.raises(ValueError, match="public"):
        pub.generate_rotation_keys([5])
    with pytest.raises(ValueError, match="public"):
        pub._engine.decrypt(t._ct)  # the core refuses as well


def test_secret_context_saves_only_on_request(ctx, tmp_path):
    with pytest.raises(ValueError, match="include_secret_key"):
        ctx.to_bytes()
    path = tmp_path / "private.ht"
    ctx.save(path, include_secret_key=True)
    # the memory-mapped file writer and to_bytes give the same record
    assert path.read_bytes() == ctx.to_bytes(include_secret_key=True)
    mine = ht.load(path, allow_insecure=True)
    assert not mine.is_public
    t = ctx.encrypt(X)
    assert np.array_equal(mine.decrypt(ht.load(t.to_bytes(), mine)), ctx.decrypt(t))


def test_files_and_streams(ctx, tmp_path):
    t = ctx.encrypt(X)
    path = tmp_path / "t.ht"
    t.save(path)
    assert bits(ctx.decrypt(ht.load(str(path))), X) > 25
    buf = io.BytesIO()
    ht.save(t, buf)
    buf.seek(0)
    assert bits(ctx.decrypt(ht.load(buf)), X) > 25
    assert bits(ctx.decrypt(ht.from_bytes(bytearray(t.to_bytes()))), X) > 25


def test_pickle_round_trips_tensors_and_public_contexts_but_not_secret_keys(ctx, pub):
    t = ctx.encrypt(X)
    assert bits(ctx.decrypt(pickle.loads(pickle.dumps(t))), X) > 25
    p2 = pickle.loads(pickle.dumps(pub))
    assert p2.is_public and p2 is not pub
    with pytest.raises(TypeError, match="secret"):
        pickle.dumps(ctx)
    pt = ctx.encode(X)
    assert pickle.loads(pickle.dumps(pt)).level == pt.level


def test_unpickling_without_the_context_is_a_clear_error(ctx):
    other = ht.Context.from_preset("toy-insecure", seed=78)
    data = pickle.dumps(other.encrypt(X))
    del other
    import gc

    gc.collect()
    with pytest.raises(ht.FormatError, match="load its context first"):
        pickle.loads(data)


def test_objects_of_other_keys_or_parameters_are_refused(ctx, other_ctx):
    t = ctx.encrypt(X)
    with pytest.raises(ht.FormatError, match="key id"):
        ht.load(t.to_bytes(), other_ctx)
    n13 = ht.Context.from_preset("n13-insecure", seed=1)
    with pytest.raises(ht.FormatError, match="parameter"):
        ht.load(t.to_bytes(), n13)
    with pytest.raises(ht.FormatError, match="parameter"):
        ht.load(ht.PlainMatrix(ctx, np.eye(2)).to_bytes(), n13)


def _run(code: str, cwd) -> str:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_server_process_evaluates_client_decrypts(ctx, pub, tmp_path):
    """The client saves a public context and a ciphertext; another process
    loads them, evaluates and saves the result; the client decrypts it."""
    pub.save(tmp_path / "public.ht")
    ctx.encrypt(X, symmetric=True).save(tmp_path / "x.ht")
    ctx.encode(X[::-1], level=ctx.max_level).save(tmp_path / "w.ht")
    _run("""
        import hetensor as ht
        srv = ht.load("public.ht", allow_insecure=True)
        assert srv.is_public
        x = ht.load("x.ht", srv)
        w = ht.load("w.ht", srv)
        y = (x * w + x.rotate(1) - 0.5).conjugate()
        y.save("y.ht")
        try:
            srv.decrypt(y)
        except ValueError as e:
            print("refused:", "public" in str(e))
    """, tmp_path)
    y = ht.load(tmp_path / "y.ht", ctx)
    ref = X * X[::-1] + np.roll(np.concatenate([X, np.zeros(ctx.slots - X.size)]), -1)[: X.size] - 0.5
    assert bits(ctx.decrypt(y), ref) > 18


def _square(t):
    return t * t


def test_multiprocessing_pool_with_pickled_tensors(ctx, pub):
    import multiprocessing as mp

    data = pub.to_bytes()
    with mp.get_context("spawn").Pool(1, initializer=_load_public, initargs=(data,)) as pool:
        outs = pool.map(_square, [pub.encrypt(X), pub.encrypt(-X)])
    got = [ctx.decrypt(ht.load(o.to_bytes(), ctx)) for o in outs]
    assert bits(got[0], X * X) > 20 and bits(got[1], X * X) > 20


def _load_public(data):
    global _SERVER  # keep the context alive in the worker: tensors bind to it
    _SERVER = ht.load(data, allow_insecure=True)


def test_bootstrapping_keys_across_processes(tmp_path):
    """Rotation, conjugation and encapsulation keys of bootstrapping travel in
    the public context; the server bootstraps, the client decrypts."""
    bctx = ht.Context.from_preset("toy-boot-insecure", bootstrap=True, seed=21)
    bpub = bctx.public()
    assert bpub.can_bootstrap
    bpub.save(tmp_path / "boot.ht")
    x = np.linspace(-1, 1, 100)
    bctx.encrypt(x).level_to(bctx.bootstrap_contract.input_level).save(tmp_path / "x.ht")
    _run("""
        import hetensor as ht
        srv = ht.load("boot.ht", allow_insecure=True)
        y = srv.bootstrap(ht.load("x.ht", srv))
        (y * y).save("y.ht")
    """, tmp_path)
    y = ht.load(tmp_path / "y.ht", bctx)
    assert y.level == bctx.fresh_level - 1
    assert bits(bctx.decrypt(y), x * x) > 18


def test_torch_save_and_dtype(ctx):
    torch = pytest.importorskip("torch")
    x = torch.linspace(-1, 1, 50, dtype=torch.float32)
    t = ctx.encrypt(x)
    buf = io.BytesIO()
    torch.save({"x": t, "pub": ctx.public()}, buf)
    buf.seek(0)
    back = torch.load(buf, weights_only=False)  # pickled objects, not tensors: weights_only cannot hold them
    out = ctx.decrypt(back["x"])
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32
    assert bits(out.double().numpy(), x.double().numpy()) > 20
    assert back["pub"].is_public


@pytest.mark.parametrize("how", ["to_bytes", "file", "pickle", "torch.save"])
@pytest.mark.parametrize("dtype", ["float16", "bfloat16", "float32", "float64", "complex64"])
def test_torch_dtype_and_device_survive_every_round_trip(ctx, tmp_path, how, dtype):
    torch = pytest.importorskip("torch")
    want = getattr(torch, dtype)
    ref = np.linspace(-1, 1, 24).reshape(4, 6) * (1 + 0.5j if want.is_complex else 1)
    t = torch.tensor(ref).to(want)
    x = ctx.encrypt(t) * 2
    if how == "to_bytes":
        y = ht.from_bytes(x.to_bytes(), ctx)
    elif how == "file":
        x.save(tmp_path / "x.ht")
        y = ht.load(tmp_path / "x.ht", ctx)
    elif how == "pickle":
        y = pickle.loads(pickle.dumps(x))
    else:
        buf = io.BytesIO()
        torch.save({"x": x}, buf)
        buf.seek(0)
        y = torch.load(buf, weights_only=False)["x"]
    assert (y.dtype, y.device) == (want, torch.device("cpu"))
    out = ctx.decrypt(y)
    assert isinstance(out, torch.Tensor) and out.dtype == want and out.device == torch.device("cpu")
    # the reference is the float64 double of the rounded input; half precision keeps ~8 to 11 bits
    expect = 2 * t.to(torch.complex128 if want.is_complex else torch.float64).numpy()
    assert bits(out.to(torch.complex128 if want.is_complex else torch.float64).numpy(), expect) >= {
        "float16": 9, "bfloat16": 6}.get(dtype, 20)


def test_a_recorded_device_comes_back_and_map_location_overrides_it(ctx):
    torch = pytest.importorskip("torch")
    x = ctx.encrypt(torch.linspace(-1, 1, 8, dtype=torch.float32))
    x._tmeta = (torch.float32, torch.device("cuda:0"))  # as if encrypted from a CUDA tensor
    data = x.to_bytes()
    y = ht.from_bytes(data, ctx)
    assert y.result_device == torch.device("cuda:0") and y.dtype == torch.float32 and y.device == torch.device("cpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="cannot decrypt onto device 'cuda:0'.*device='cpu'"):
            ctx.decrypt(y)
    else:
        assert ctx.decrypt(y).device == torch.device("cuda:0")
    out = ctx.decrypt(y, device="cpu")
    assert out.device == torch.device("cpu") and out.dtype == torch.float32
    assert bits(out.double().numpy(), np.linspace(-1, 1, 8)) > 20
    for where in ("cpu", torch.device("cpu")):
        z = ht.from_bytes(data, ctx, map_location=where)
        assert z.result_device == torch.device("cpu")
        assert bits(ctx.decrypt(z).double().numpy(), np.linspace(-1, 1, 8)) > 20
    with pytest.raises(TypeError, match="map_location: 'gpu0' is not a torch device"):
        ht.from_bytes(data, ctx, map_location="gpu0")
    with pytest.raises(ValueError, match="device= applies to tensors encrypted from torch"):
        ctx.decrypt(ctx.encrypt(np.ones(3)), device="cpu")
