"""Shared test setup.

* Every test starts from the same global state (default dtype, grad mode, anomaly mode,
  active backend, random seed) and whatever it changes is put back afterwards, so tests can
  run in any order.
* **Every test runs on every backend** in one pytest run, through the autouse ``backend_name``
  fixture (as Chainer's ``inject_backend_tests`` or early tinygrad's ``TestOpsGPU(TestOps)``):
  ``[numpy]`` and ``[cupy]``. ``cupy`` is the real CuPy where it is installed with a GPU, and
  otherwise the **strict CuPy stand-in** in ``tests/cupy_standin/``: NumPy underneath, CuPy's
  host/device rules on top (device arrays refuse implicit conversion, NumPy functions and host
  arrays; device→host transfers are counted). It emulates CuPy's rules, it is *not* a GPU
  test. ``TINYGRAD_RNN_TEST_BACKENDS=numpy`` (a comma list) narrows the set. Tests that
  compare with NumPy convert with ``Tensor.numpy()``. A test that does not depend on the
  backend (a subprocess, a file format) is marked ``single_backend`` and runs once, on NumPy.
* Hypothesis gets a small fixed budget (CI has two cores); ``HYPOTHESIS_PROFILE=thorough``
  runs many more examples.
"""
from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

#: Whether the real CuPy is installed (checked before the stand-in can shadow it).
REAL_CUPY = importlib.util.find_spec("cupy") is not None
#: Where the strict CuPy stand-in lives; put on sys.path only when the real CuPy is absent.
STANDIN_DIR = Path(__file__).resolve().parent / "cupy_standin"
if not REAL_CUPY:
    sys.path.insert(0, str(STANDIN_DIR))

import tinygrad_rnn as tg  # noqa: E402  (after the stand-in is importable as `cupy`)
from tinygrad_rnn import backend  # noqa: E402
from tinygrad_rnn.autograd import _Mode  # noqa: E402

settings.register_profile("ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# One BLAS thread for the whole session, as a user's own training loop should have it: the
# tests multiply small matrices, and threads fighting for two CI cores slow them down.
tg.set_num_threads(1)

#: The backend the session started on (from TINYGRAD_RNN_BACKEND at import time).
SESSION_BACKEND = backend.name


def cupy_usable() -> bool:
    """Whether the real CuPy imports and sees a GPU (the stand-in does not count)."""
    if not REAL_CUPY:
        return False
    try:
        backend.module_for("cupy")
    except Exception:
        return False
    return True


def standin_active() -> bool:
    """Whether ``backend 'cupy'`` is the stand-in (not a GPU) in this session."""
    return not REAL_CUPY


def _test_backends() -> list:
    """The backends every test runs on: NumPy, and CuPy (real with a GPU, else the stand-in),
    unless ``TINYGRAD_RNN_TEST_BACKENDS`` names a subset."""
    chosen = os.environ.get("TINYGRAD_RNN_TEST_BACKENDS", "")
    if chosen.strip():
        return [name.strip() for name in chosen.split(",") if name.strip()]
    return ["numpy", "cupy"] if (standin_active() or cupy_usable()) else ["numpy"]


TEST_BACKENDS = _test_backends()


def pytest_configure(config):
    config.addinivalue_line("markers", "single_backend: the test does not depend on the array "
                                       "backend (subprocess, file format); run it once, on NumPy")


def pytest_generate_tests(metafunc):
    """Parametrise every test over :data:`TEST_BACKENDS` (``[numpy]``, ``[cupy]`` in its id)."""
    if "backend_name" in metafunc.fixturenames:
        single = metafunc.definition.get_closest_marker("single_backend") is not None
        names = TEST_BACKENDS[:1] if single else TEST_BACKENDS
        metafunc.parametrize("backend_name", names, indirect=True)


@pytest.fixture(autouse=True)
def backend_name(request):
    """The backend this test runs on (made active for the test, restored afterwards)."""
    name = getattr(request, "param", TEST_BACKENDS[0])
    backend.use(name)
    yield name
    backend.use(SESSION_BACKEND)


@pytest.fixture
def device_transfers():
    """Count device→host transfers under the CuPy stand-in: ``with device_transfers() as n:``
    … ``n()`` is the number made inside the block. Skips on NumPy and on a real GPU (where
    transfers cannot be counted)."""
    if backend.name != "cupy" or not standin_active():
        pytest.skip("transfer counting needs the CuPy stand-in backend")
    import contextlib

    import cupy

    @contextlib.contextmanager
    def counting():
        start = cupy.transfers
        yield lambda: cupy.transfers - start
    return counting


@pytest.fixture(autouse=True)
def _isolated_global_state(backend_name):
    """Put back the process-wide switches a test may change."""
    dtype = backend.get_default_dtype()
    grad_enabled, anomaly = _Mode.grad_enabled, _Mode.anomaly
    tg.manual_seed(0)
    yield
    backend.set_default_dtype(dtype)
    _Mode.grad_enabled, _Mode.anomaly = grad_enabled, anomaly


@pytest.fixture
def float64_default():
    """Make float64 the default dtype for one test (restored by the autouse fixture)."""
    tg.set_default_dtype("float64")


@pytest.fixture
def requires_gpu():
    """Skip unless CuPy is importable and a GPU answers."""
    if not cupy_usable():
        pytest.skip("needs CuPy and an NVIDIA GPU")
