"""The Pascanu bound as a property: for a tanh RNN, ``‖∂h_T/∂h_t‖ ≤ σ_max(W_hh)^(T−t)``.

Each step's Jacobian is ``diag(1 − h_t²) W_hh`` and ``0 < 1 − h² ≤ 1``, so its spectral norm
is at most σ_max(W_hh); a product of T − t of them is at most σ_max^(T−t) (Pascanu, Mikolov
& Bengio 2013). With σ_max < 1 gradients must vanish at least geometrically. Hypothesis
draws the model (sizes, weights, inputs, initial state) and the bound must hold for all.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, strategies as st

from tinygrad_rnn import Tensor, bptt, nn


@given(hidden=st.integers(1, 6), inputs=st.integers(1, 3), steps=st.integers(1, 25),
       batch=st.integers(1, 3), sigma=st.floats(0.05, 0.99), seed=st.integers(0, 2**32 - 1),
       x_scale=st.floats(0.0, 3.0))
def test_jacobian_norms_obey_the_pascanu_bound(hidden, inputs, steps, batch, sigma, seed,
                                               x_scale):
    rng = np.random.default_rng(seed)
    rnn = nn.RNN(inputs, hidden, dtype="float64")
    w_hh = rng.standard_normal((hidden, hidden))
    w_hh *= sigma / np.linalg.norm(w_hh, ord=2)                 # σ_max(W_hh) = sigma < 1
    state = {n: rng.standard_normal(p.shape) for n, p in rnn.named_parameters()}
    state["weight_hh_l0"] = w_hh
    rnn.load_state_dict(state)
    x = Tensor(x_scale * rng.standard_normal((steps, batch, inputs)))
    h0 = Tensor(rng.uniform(-1, 1, (1, batch, hidden)))
    norms = bptt.jacobian_norms(rnn, x, h0)[0]                  # ‖∂h_T/∂h_t‖, t = 1 … T
    exponents = np.arange(steps - 1, -1, -1)                    # T − t
    bound = np.linalg.norm(w_hh, ord=2) ** exponents
    assert np.all(norms <= bound * (1 + 1e-12) + 1e-300)
    assert abs(norms[-1] - 1.0) < 1e-12                          # ∂h_T/∂h_T = I
