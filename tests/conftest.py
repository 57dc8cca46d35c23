"""Shared test setup.

* Every test starts from the same global state (default dtype, grad mode, anomaly mode,
  active backend, random seed) and whatever it changes is put back afterwards, so tests can
  run in any order.
* The suite runs on the backend named by ``TINYGRAD_RNN_BACKEND`` (``numpy`` by default):
  ``TINYGRAD_RNN_BACKEND=cupy python -m pytest`` runs the same tests on the GPU. Tests that
  compare with NumPy convert with ``Tensor.numpy()``.
* Hypothesis gets a small fixed budget (CI has two cores); ``HYPOTHESIS_PROFILE=thorough``
  runs many more examples.
"""
from __future__ import annotations

import importlib.util
import os

import pytest
from hypothesis import HealthCheck, settings

import tinygrad_rnn as tg
from tinygrad_rnn import backend
from tinygrad_rnn.autograd import _Mode

settings.register_profile("ci", max_examples=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", max_examples=500, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# One BLAS thread for the whole session, as a user's own training loop should have it: the
# tests multiply small matrices, and threads fighting for two CI cores slow them down.
tg.set_num_threads(1)

#: The backend this test session runs on (from TINYGRAD_RNN_BACKEND at import time).
SESSION_BACKEND = backend.name


def cupy_usable() -> bool:
    """Whether CuPy imports and sees a GPU (without switching the active backend)."""
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        backend.module_for("cupy")
    except Exception:
        return False
    return True


@pytest.fixture(autouse=True)
def _isolated_global_state():
    """Put back the process-wide switches a test may change."""
    dtype = backend.get_default_dtype()
    grad_enabled, anomaly = _Mode.grad_enabled, _Mode.anomaly
    tg.manual_seed(0)
    yield
    backend.set_default_dtype(dtype)
    _Mode.grad_enabled, _Mode.anomaly = grad_enabled, anomaly
    if backend.name != SESSION_BACKEND:
        backend.use(SESSION_BACKEND)


@pytest.fixture
def float64_default():
    """Make float64 the default dtype for one test (restored by the autouse fixture)."""
    tg.set_default_dtype("float64")


@pytest.fixture
def requires_gpu():
    """Skip unless CuPy is importable and a GPU answers."""
    if not cupy_usable():
        pytest.skip("needs CuPy and an NVIDIA GPU")
