"""The backend switch (SPEC §2): environment variable, ``backend.use``, moving data, mixing
backends, seeding and the default dtype. Subprocesses check what happens at import time."""
from __future__ import annotations

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend

from conftest import REAL_CUPY

ROOT = pathlib.Path(__file__).resolve().parents[1]
CUDA_HINT = 'pip install "tinygrad-rnn[cuda]"'


def run_python(code: str, backend_value: str | None):
    """Run ``code`` in a fresh interpreter with TINYGRAD_RNN_BACKEND set (or unset)."""
    env = {k: v for k, v in os.environ.items() if k != "TINYGRAD_RNN_BACKEND"}
    if backend_value is not None:
        env["TINYGRAD_RNN_BACKEND"] = backend_value
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True,
                          text=True, timeout=120)


# ------------------------------------------------------------------ environment variable

@pytest.mark.single_backend
@pytest.mark.parametrize("value", [None, "numpy", ""])
def test_env_selects_numpy(value):
    proc = run_python("import tinygrad_rnn as tg, numpy\n"
                      "assert tg.backend.xp is numpy, tg.backend.xp\n"
                      "t = tg.Tensor([1.0, 2.0])\n"
                      "assert type(t.data) is numpy.ndarray\n"
                      "print(tg.backend.name, t.backend)", value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["numpy", "numpy"]


@pytest.mark.single_backend
@pytest.mark.parametrize("value", ["tpu", "torch", "numpyy"])
def test_env_unknown_backend(value):
    # The import itself succeeds (so the command line can still show --help or switch to
    # --backend numpy); the first tensor raises the reason.
    proc = run_python("import tinygrad_rnn as tg\nprint('imported', flush=True)\n"
                      "tg.Tensor([1.0])", value)
    assert proc.stdout.split() == ["imported"]
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError")
    for word in ("TINYGRAD_RNN_BACKEND", value, "numpy", "cupy"):
        assert word in last, (word, last)


@pytest.mark.single_backend
@pytest.mark.skipif(REAL_CUPY,
                    reason="CuPy is installed here; this checks the error without it")
def test_env_cupy_without_cupy_names_the_extra():
    proc = run_python("import tinygrad_rnn as tg\ntg.Tensor([1.0])", "cupy")
    assert proc.returncode != 0
    assert proc.stderr.strip().splitlines()[-1].startswith(
        "tinygrad_rnn.backend.BackendUnavailableError")
    assert CUDA_HINT in proc.stderr
    assert "cupy" in proc.stderr.lower()


@pytest.mark.single_backend
@pytest.mark.parametrize("value", ["bogus", "cupy"])
def test_env_bad_backend_then_use_numpy_recovers(value):
    proc = run_python("import tinygrad_rnn as tg\ntg.backend.use('numpy')\n"
                      "print((tg.Tensor([2.0]) * 3).item())", value)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["6.0"]


@pytest.fixture
def no_cupy(monkeypatch):
    """Make ``import cupy`` fail in this process (the real CuPy or the test stand-in)."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(backend, "_cupy", None)


@pytest.mark.single_backend
def test_use_cupy_without_cupy_names_the_extra_and_changes_nothing(no_cupy):
    before = backend.name, backend.xp
    with pytest.raises(Exception, match=r'pip install "tinygrad-rnn\[cuda\]"'):
        backend.use("cupy")
    assert (backend.name, backend.xp) == before


@pytest.mark.single_backend
def test_to_cupy_without_cupy_names_the_extra(no_cupy):
    with pytest.raises(Exception, match=r'pip install "tinygrad-rnn\[cuda\]"'):
        Tensor([1.0]).to("cupy")


def test_env_cupy_with_gpu(requires_gpu):
    proc = run_python("import tinygrad_rnn as tg\nt = tg.Tensor([1.0])\n"
                      "print(tg.backend.name, t.backend, type(t.numpy()).__module__)", "cupy")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["cupy", "cupy", "numpy"]


# ------------------------------------------------------------------------- backend.use()

@pytest.mark.parametrize("bad", ["tpu", "NumPy2", ""])
def test_use_unknown_backend(bad):
    before = backend.name
    with pytest.raises(ValueError) as info:
        backend.use(bad)
    message = str(info.value)
    assert repr(bad) in message and "'numpy'" in message and "'cupy'" in message
    assert backend.name == before


def test_use_numpy():
    backend.use("numpy")
    assert backend.name == "numpy" and backend.xp is np
    assert type(Tensor([1.0]).data) is np.ndarray


def test_use_switches_where_new_tensors_live(requires_gpu):
    import cupy
    backend.use("cupy")
    assert backend.xp is cupy and isinstance(Tensor([1.0]).data, cupy.ndarray)
    assert isinstance(Tensor.zeros(2).data, cupy.ndarray)
    backend.use("numpy")
    assert type(Tensor([1.0]).data) is np.ndarray


# ---------------------------------------------------------------------- moving tensors

def test_numpy_returns_host_array_on_every_backend():
    t = Tensor.randn(3, 2)
    a = t.numpy()
    assert type(a) is np.ndarray and a.shape == (3, 2) and a.dtype == t.dtype


def test_to_numpy():
    t = Tensor([[1.0, 2.0]])
    moved = t.to("numpy")
    assert moved.backend == "numpy" and type(moved.data) is np.ndarray
    np.testing.assert_array_equal(moved.numpy(), [[1.0, 2.0]])


def test_to_unknown_backend():
    with pytest.raises(ValueError, match="'numpy', 'cupy'"):
        Tensor([1.0]).to("gpu")


def test_to_cupy_and_back_is_differentiable(requires_gpu):
    backend.use("numpy")
    x = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x.to("cupy")
    assert y.backend == "cupy" and not y.is_leaf
    z = (y * y).to("numpy").sum()
    z.backward()
    assert x.grad.backend == "numpy"
    np.testing.assert_allclose(x.grad.numpy(), [2.0, 4.0])


@pytest.mark.parametrize("op", [lambda a, b: a + b, lambda a, b: a * b, lambda a, b: a @ b,
                                lambda a, b: Tensor.cat([a, b]),
                                lambda a, b: Tensor.stack([a, b])])
def test_mixing_backends_raises(op, requires_gpu):
    a = Tensor(np.ones((2, 2))).to("numpy")
    b = a.to("cupy")
    assert a.backend == "numpy" and b.backend == "cupy"
    for x, y in ((a, b), (b, a)):
        with pytest.raises(RuntimeError, match="backend"):
            op(x, y)


# ---------------------------------------------------------------------------- seeding

@pytest.mark.parametrize("draw", [lambda: Tensor.randn(4, 3), lambda: Tensor.rand(5),
                                  lambda: Tensor.uniform(2, 2, low=-1.0, high=1.0),
                                  lambda: Tensor.randn_like(Tensor.zeros(3))])
def test_manual_seed_reproduces(draw):
    tg.manual_seed(1234)
    a, b = draw().numpy(), draw().numpy()
    tg.manual_seed(1234)
    c, d = draw().numpy(), draw().numpy()
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(b, d)
    assert not np.array_equal(a, b)   # the stream advances
    tg.manual_seed(4321)
    assert not np.array_equal(draw().numpy(), a)


def test_same_seed_same_values_in_both_dtypes():
    """Samples are drawn on the host in float64 and then cast."""
    tg.manual_seed(7)
    a = Tensor.randn(10, dtype="float64").numpy()
    tg.manual_seed(7)
    b = Tensor.randn(10, dtype="float32").numpy()
    np.testing.assert_array_equal(a.astype(np.float32), b)


@pytest.mark.parametrize("bad", [-1, 1.5, "3", None])
def test_manual_seed_rejects_bad_seeds(bad):
    with pytest.raises(ValueError, match="seed"):
        tg.manual_seed(bad)


# ------------------------------------------------------------------------ default dtype

def test_default_dtype_is_float32():
    assert tg.get_default_dtype() == np.float32
    assert Tensor(1.0).dtype == np.float32 and Tensor.zeros(2).dtype == np.float32


@pytest.mark.parametrize("spelling", ["float64", np.float64, np.dtype("float64")])
def test_set_default_dtype(spelling):
    tg.set_default_dtype(spelling)
    assert tg.get_default_dtype() == np.float64
    for t in (Tensor(1.0), Tensor([[1.5]]), Tensor.zeros(2), Tensor.ones(2), Tensor.randn(2),
              Tensor.rand(2), Tensor.uniform(2)):
        assert t.dtype == np.float64
    assert (Tensor([1.0, 2.0]) * 2.5).dtype == np.float64
    tg.set_default_dtype("float32")
    assert Tensor(1.0).dtype == np.float32


def test_the_default_dtype_was_restored_by_the_fixture():
    """Runs after test_set_default_dtype in file order: state does not leak between tests."""
    assert tg.get_default_dtype() == np.float32


@pytest.mark.parametrize("bad, error", [("int32", TypeError), ("float16", TypeError),
                                        ("nonsense", TypeError)])
def test_set_default_dtype_rejects(bad, error):
    with pytest.raises(error):
        tg.set_default_dtype(bad)
    assert tg.get_default_dtype() == np.float32


# ------------------------------------------------------------------------------- the API

def test_public_names():
    for name in ("Tensor", "backend", "no_grad", "enable_grad", "detect_anomaly", "manual_seed",
                 "set_default_dtype", "get_default_dtype", "gradcheck", "GradcheckError"):
        assert hasattr(tg, name), name
    assert backend.name in ("numpy", "cupy")
    assert isinstance(tg.__version__, str)


# ------------------------------------------------------------------ initialisation draws

@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(3,), (5, 7), (0, 4), (2, 3, 4)])
def test_uniform_draws_the_seeded_stream_in_chunks(monkeypatch, dtype, shape):
    monkeypatch.setattr(backend, "UNIFORM_CHUNK", 4)      # force several chunks
    tg.manual_seed(11)
    got = backend.to_host(backend.uniform(shape, -0.5, 0.25, dtype))
    expected = np.random.default_rng(11).uniform(-0.5, 0.25, shape).astype(dtype)
    assert got.dtype == np.dtype(dtype) and got.shape == shape
    np.testing.assert_array_equal(got, expected)


def test_uniform_refuses_integer_dtypes():
    with pytest.raises(TypeError, match="floating dtype"):
        backend.uniform((2,), 0.0, 1.0, "int64")


@pytest.mark.single_backend   # host memory: where NumPy keeps the parameters
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_layer_initialisation_needs_no_more_than_its_parameters(dtype):
    """nn.Linear(1000, 1000): 4 MB of float32 weights may not cost a float64 draw (8 MB)
    plus a cast (4 MB) at the peak."""
    import tracemalloc
    weight_bytes = 1000 * 1000 * np.dtype(dtype).itemsize
    tracemalloc.start()
    try:
        layer = tg.nn.Linear(1000, 1000, dtype=dtype)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert layer.weight.dtype == np.dtype(dtype)
    assert peak < weight_bytes + 1.5e6, (peak, weight_bytes)


# ---------------------------------------------------------------------------- BLAS threads

def blas_threads_now() -> set:
    from threadpoolctl import threadpool_info
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


@pytest.fixture
def two_blas_threads(monkeypatch):
    """BLAS on 2 threads during the test (restored after); skip if NumPy's BLAS has none."""
    threadpoolctl = pytest.importorskip("threadpoolctl")
    if not blas_threads_now():
        pytest.skip("threadpoolctl sees no BLAS library here")
    monkeypatch.setattr(backend, "_num_threads", backend.get_num_threads())
    with threadpoolctl.threadpool_limits(limits=2):
        yield


def test_blas_threads_limits_inside_and_restores_after(two_blas_threads):
    assert blas_threads_now() == {2}
    with backend.blas_threads():
        assert blas_threads_now() == {1}
    assert blas_threads_now() == {2}


def test_training_runs_on_one_thread_whatever_blas_was_set_to(two_blas_threads):
    """BLAS was set to 2 threads after NumPy loaded (as ``import numpy`` first, then a
    variable set at tinygrad_rnn's import, would leave it): training still runs on one."""
    from tinygrad_rnn.train import TrainConfig, Trainer
    trainer = Trainer(TrainConfig("sine", steps=2, batch_size=2, seq_len=4, hidden=3))
    seen = []
    step = trainer.train_step
    trainer.train_step = lambda: seen.append(blas_threads_now()) or step()
    trainer.run(quiet=True)
    assert seen == [{1}, {1}]
    assert blas_threads_now() == {2}                  # the user's setting is back


def test_set_num_threads_applies_to_the_process_and_the_loops(two_blas_threads):
    tg.set_num_threads(1)
    assert blas_threads_now() == {1} and tg.get_num_threads() == 1
    tg.set_num_threads(None)                          # loops leave the threads alone
    with backend.blas_threads():
        assert blas_threads_now() == {1}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2"])
def test_set_num_threads_refuses_non_positive_integers(bad):
    with pytest.raises(ValueError, match="positive integer or None"):
        tg.set_num_threads(bad)


def test_a_module_call_runs_on_one_thread_and_restores(two_blas_threads):
    seen = []

    class Probe(tg.nn.Module):
        def forward(self, x):
            seen.append(blas_threads_now())
            return x

    outer = tg.nn.Sequential(Probe(), Probe()) if hasattr(tg.nn, "Sequential") else Probe()
    outer(Tensor([1.0]))
    assert seen and all(s == {1} for s in seen)
    assert blas_threads_now() == {2}
