"""``gradient_flow``: the (layer, time) maps of ‖∂h_T/∂h_t‖ and ‖∂L/∂h_t‖."""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.gradient_flow import gradient_flow, plot_gradient_flow


@pytest.mark.parametrize("make", [lambda: nn.RNN(3, 4, num_layers=2, dtype="float64"),
                                  lambda: nn.LSTM(3, 4, num_layers=3, dtype="float64")],
                         ids=["rnn", "lstm"])
def test_the_maps_have_a_row_per_layer_and_match_finite_differences(make):
    tg.manual_seed(0)
    rnn = make()
    x = Tensor(np.random.default_rng(0).standard_normal((6, 2, 3)))
    w = Tensor(np.random.default_rng(1).standard_normal((6, 2, 4)))

    def loss():
        return (rnn(x)[0] * w).sum()
    flow = gradient_flow(rnn, x, loss)
    assert flow.jacobian_norms.shape == flow.grad_norms.shape == (rnn.num_layers, 6)
    np.testing.assert_allclose(flow.jacobian_norms[:, -1], 1.0, rtol=1e-12)   # ∂h_T/∂h_T = I
    # The top layer's ∂L/∂h_T is the loss weight at T (no future left to add to it).
    np.testing.assert_allclose(flow.grad_norms[-1, -1], np.linalg.norm(w.numpy()[-1]),
                               rtol=1e-12)


def test_a_model_holding_the_layer_works_and_other_things_are_refused():
    model = nn.Sequential(nn.GRU(2, 3, dtype="float64"))
    x = Tensor(np.ones((4, 1, 2)))
    flow = gradient_flow(model, x, lambda: model(x)[0].sum())
    assert flow.grad_norms.shape == (1, 4)
    with pytest.raises(TypeError, match="nn.RNN"):
        gradient_flow(nn.Linear(2, 2), x, lambda: None)


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="no matplotlib")
def test_the_heatmap_is_written(tmp_path):
    rnn = nn.RNN(2, 3, num_layers=2, dtype="float64")
    x = Tensor(np.ones((5, 1, 2)))
    flow = gradient_flow(rnn, x, lambda: rnn(x)[0].sum())
    plot_gradient_flow({"rnn": flow}, str(tmp_path / "flow.png"))
    assert (tmp_path / "flow.png").stat().st_size > 1000
