"""``nn.init``: gains against values recorded from PyTorch (``tests/fixtures/init``),
distributions against their formulas (a seeded Kolmogorov-Smirnov test), orthogonality to
1e-12, and the in-place contract (same array, no graph, dtype kept)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.nn import init

GAINS = Path(__file__).parent / "fixtures" / "init" / "gains.npz"
N = 4000                                  # draws per distribution test
KS_CRITICAL = 1.95 / math.sqrt(N)         # Kolmogorov-Smirnov, alpha = 0.001


def ks_statistic(samples: np.ndarray, cdf) -> float:
    """sup |F_empirical - F| for the sorted samples."""
    x = np.sort(samples.ravel())
    f = np.array([cdf(v) for v in x])
    n = len(x)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def uniform_cdf(a, b):
    return lambda x: min(max((x - a) / (b - a), 0.0), 1.0)


def normal_cdf(mean, std):
    return lambda x: 0.5 * (1 + math.erf((x - mean) / (std * math.sqrt(2))))


@pytest.fixture(autouse=True)
def seeded():
    tg.manual_seed(1234)


# --------------------------------------------------------------------------- gains

def test_calculate_gain_matches_pytorch():
    with np.load(GAINS, allow_pickle=False) as f:
        meta, gains = json.loads(f["meta"].item()), f["gain"]
    for (name, param), expected in zip(meta["calls"], gains):
        assert init.calculate_gain(name, param) == pytest.approx(expected, rel=1e-15, abs=0)


@pytest.mark.parametrize("call, match", [
    (lambda: init.calculate_gain("swish"), "Unsupported nonlinearity swish"),
    (lambda: init.calculate_gain("leaky_relu", "0.1"), "negative_slope 0.1 not a valid"),
    (lambda: init.calculate_gain("leaky_relu", True), "not a valid number"),
    (lambda: init.kaiming_uniform_(Tensor(np.zeros((3, 4))), mode="fan"),
     r"Mode fan not supported, please use one of \['fan_in', 'fan_out'\]"),
    (lambda: init.xavier_uniform_(Tensor(np.zeros(3))), "fewer than 2 dimensions"),
    (lambda: init.eye_(Tensor(np.zeros((2, 2, 2)))), "Only tensors with 2 dimensions"),
    (lambda: init.orthogonal_(Tensor(np.zeros(3))), "2 or more dimensions"),
])
def test_errors_use_pytorchs_wording(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("call, match", [
    (lambda: init.uniform_(Tensor(np.zeros(3)), 1.0, 0.0),
     r"uniform_ expects to return a \[from, to\) range, but found from=1 > to=0"),
    (lambda: init.xavier_uniform_(Tensor(np.zeros((2, 2))), gain=-1.0),
     r"uniform_ expects .* but found from=1.22474 > to=-1.22474"),  # sqrt(6 / (2 + 2))
    (lambda: init.normal_(Tensor(np.zeros(3)), 0.0, -1.0),
     "normal expects std >= 0.0, but found std -1"),
])
def test_bad_ranges_are_pytorchs_errors_not_numpys(call, match):
    # NumPy's own messages ("high - low < 0", "scale < 0") name neither the function nor
    # the values; PyTorch raises RuntimeError with these words.
    with pytest.raises(RuntimeError, match=match):
        call()


def test_non_tensor_is_refused():
    with pytest.raises(TypeError, match="expected a Tensor, got ndarray"):
        init.zeros_(np.zeros(3))


# ---------------------------------------------------------------------- distributions

@pytest.mark.parametrize("fill, cdf, bound", [
    (lambda t: init.uniform_(t, -0.3, 0.7), uniform_cdf(-0.3, 0.7), None),
    (lambda t: init.normal_(t, 0.5, 2.0), normal_cdf(0.5, 2.0), None),
    # (80, 50): fan_in 50, fan_out 80
    (lambda t: init.xavier_uniform_(t, gain=2.0),
     uniform_cdf(-2 * math.sqrt(6 / 130), 2 * math.sqrt(6 / 130)), 2 * math.sqrt(6 / 130)),
    (lambda t: init.xavier_normal_(t), normal_cdf(0, math.sqrt(2 / 130)), None),
    (lambda t: init.kaiming_uniform_(t), uniform_cdf(-math.sqrt(6 / 1.0001 / 50),
                                                     math.sqrt(6 / 1.0001 / 50)),
     math.sqrt(6 / 1.0001 / 50)),
    (lambda t: init.kaiming_uniform_(t, a=math.sqrt(5)),     # nn.Linear's own choice
     uniform_cdf(-1 / math.sqrt(50), 1 / math.sqrt(50)), 1 / math.sqrt(50)),
    (lambda t: init.kaiming_normal_(t, mode="fan_out", nonlinearity="relu"),
     normal_cdf(0, math.sqrt(2 / 80)), None),
    (lambda t: init.kaiming_normal_(t, nonlinearity="tanh"),
     normal_cdf(0, 5 / 3 / math.sqrt(50)), None),
])
def test_distribution_follows_the_formula(fill, cdf, bound):
    t = Tensor(np.zeros((80, 50)))
    fill(t)
    assert ks_statistic(t.numpy(), cdf) < KS_CRITICAL
    if bound is not None:
        assert np.abs(t.numpy()).max() <= bound


def test_ks_check_can_fail():
    """The same check rejects a distribution whose scale is off by 10%."""
    t = init.normal_(Tensor(np.zeros((80, 50))), 0.0, 1.1)
    assert ks_statistic(t.numpy(), normal_cdf(0, 1.0)) > KS_CRITICAL


def test_fans_count_the_receptive_field():
    t = init.xavier_normal_(Tensor(np.zeros((20, 10, 5, 4))))    # fan_in 200, fan_out 400
    assert ks_statistic(t.numpy(), normal_cdf(0, math.sqrt(2 / 600))) < KS_CRITICAL


# -------------------------------------------------------------------------- matrices

@pytest.mark.parametrize("shape", [(6, 6), (4, 9), (9, 4), (3, 2, 4), (1, 5), (5, 1)])
@pytest.mark.parametrize("gain", [1.0, 2.5])
def test_orthogonal_is_orthogonal(shape, gain):
    w = init.orthogonal_(Tensor(np.zeros(shape)), gain=gain).numpy().reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), rtol=0, atol=1e-12)


def test_orthogonal_is_not_always_the_same_matrix():
    a = init.orthogonal_(Tensor(np.zeros((4, 4)))).numpy()
    b = init.orthogonal_(Tensor(np.zeros((4, 4)))).numpy()
    assert not np.allclose(a, b)
    tg.manual_seed(1234)
    np.testing.assert_array_equal(init.orthogonal_(Tensor(np.zeros((4, 4)))).numpy(), a)


@pytest.mark.parametrize("shape", [(3, 3), (2, 5), (5, 2)])
def test_eye(shape):
    np.testing.assert_array_equal(init.eye_(Tensor(np.ones(shape))).numpy(), np.eye(*shape))


def test_constant_zeros_ones():
    t = Tensor(np.zeros((2, 3)))
    np.testing.assert_array_equal(init.constant_(t, 0.25).numpy(), np.full((2, 3), 0.25))
    np.testing.assert_array_equal(init.ones_(t).numpy(), np.ones((2, 3)))
    np.testing.assert_array_equal(init.zeros_(t).numpy(), np.zeros((2, 3)))


# ------------------------------------------------------------------- in-place contract

def test_fills_in_place_without_a_graph_and_keeps_dtype():
    rnn = nn.RNN(3, 4, nonlinearity="relu").float()
    w = rnn.weight_hh_l0
    array = w.data
    state = rnn.state_dict()["weight_hh_l0"]
    returned = init.eye_(w)
    assert returned is w and w.data is array and w.dtype == np.float32
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    np.testing.assert_array_equal(state.numpy(), np.eye(4))   # shares the array
    init.orthogonal_(w)
    assert w.dtype == np.float32


def test_zero_element_tensor_warns_and_is_unchanged():
    t = Tensor(np.zeros((0, 3)))
    with pytest.warns(UserWarning, match="Initializing zero-element tensors is a no-op"):
        assert init.kaiming_uniform_(t) is t


def test_seed_makes_initialisation_reproducible():
    a = init.xavier_uniform_(Tensor(np.zeros((3, 4)))).numpy()
    tg.manual_seed(1234)
    np.testing.assert_array_equal(init.xavier_uniform_(Tensor(np.zeros((3, 4)))).numpy(), a)


def test_irnn_vs_orthogonal_example_runs():
    import subprocess
    import sys
    script = Path(__file__).resolve().parents[1] / "examples" / "irnn_vs_orthogonal.py"
    result = subprocess.run([sys.executable, str(script), "--steps", "5", "--seq-len", "6",
                             "--hidden", "4"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "IRNN (ReLU, W_hh = I)" in result.stdout and "orthogonal W_hh" in result.stdout
