"""Shared by the tests of the recurrent layers: PyTorch's documented Elman, LSTM and GRU
equations in plain NumPy, random configurations, and a forward+backward runner.

The reference is written from the equations in PyTorch's documentation of ``nn.RNN``,
``nn.LSTM`` and ``nn.GRU`` (gate order i, f, g, o and r, z, n; GRU's ``b_hn`` inside the reset
product), not from the package's code, so a test comparing against it can fail.
"""
from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from tinygrad_rnn import Tensor


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def elman_cell_reference(x, h, w_ih, w_hh, b_ih, b_hh, nonlinearity="tanh"):
    """One Elman step: ``h' = f(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)``."""
    a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    return np.tanh(a) if nonlinearity == "tanh" else np.maximum(a, 0)


def lstm_cell_reference(x, h, c, w_ih, w_hh, b_ih, b_hh, w_hr=None):
    """One LSTM step: ``(h', c')``."""
    H = c.shape[-1]
    a = x @ w_ih.T + b_ih + h @ w_hh.T + b_hh
    i, f = sigmoid(a[:, :H]), sigmoid(a[:, H:2 * H])
    g, o = np.tanh(a[:, 2 * H:3 * H]), sigmoid(a[:, 3 * H:])
    c = f * c + i * g
    h = o * np.tanh(c)
    return (h @ w_hr.T if w_hr is not None else h), c


def gru_cell_reference(x, h, w_ih, w_hh, b_ih, b_hh):
    """One GRU step: ``h'``."""
    H = h.shape[-1]
    gi, gh = x @ w_ih.T + b_ih, h @ w_hh.T + b_hh
    r = sigmoid(gi[:, :H] + gh[:, :H])
    z = sigmoid(gi[:, H:2 * H] + gh[:, H:2 * H])
    n = np.tanh(gi[:, 2 * H:] + r * gh[:, 2 * H:])
    return (1 - z) * n + z * h


#: Gate blocks stacked in each weight matrix.
GATES = {"RNN": 1, "LSTM": 4, "GRU": 3}


def reference(mode, x, state, params, *, num_layers, bidirectional, batch_first,
              proj_size=0, nonlinearity="tanh"):
    """The whole layer (``mode``: RNN, LSTM or GRU): ``x`` (L, N, I) / (N, L, I) / unbatched
    (L, I); ``state``: None, ``h0`` (RNN, GRU) or ``(h0, c0)`` (LSTM) in the user's layout.
    Returns ``(output, h_n)`` or ``(output, (h_n, c_n))``."""
    lstm = mode == "LSTM"
    unbatched = x.ndim == 2
    seq = x[:, None] if unbatched else (x.transpose(1, 0, 2) if batch_first else x)
    L, N = seq.shape[:2]
    D = 2 if bidirectional else 1
    H = params["weight_hh_l0"].shape[0] // GATES[mode]
    P = proj_size or H
    if state is None:
        h0 = np.zeros((D * num_layers, N, P))
        c0 = np.zeros((D * num_layers, N, H))
    else:
        h0, c0 = state if lstm else (state, None)
        if unbatched:
            h0, c0 = h0[:, None], (c0[:, None] if lstm else None)
    finals_h, finals_c, layer_in = [], [], seq
    for k in range(num_layers):
        outs = []
        for d in range(D):
            sfx = f"_l{k}" + ("_reverse" if d else "")
            w_ih, w_hh = params["weight_ih" + sfx], params["weight_hh" + sfx]
            b_ih = params.get("bias_ih" + sfx, np.zeros(w_ih.shape[0]))
            b_hh = params.get("bias_hh" + sfx, np.zeros(w_ih.shape[0]))
            h = h0[k * D + d]
            c = c0[k * D + d] if lstm else None
            out = np.zeros((L, N, P))
            for t in (reversed(range(L)) if d else range(L)):
                if lstm:
                    h, c = lstm_cell_reference(layer_in[t], h, c, w_ih, w_hh, b_ih, b_hh,
                                               params.get("weight_hr" + sfx))
                elif mode == "GRU":
                    h = gru_cell_reference(layer_in[t], h, w_ih, w_hh, b_ih, b_hh)
                else:
                    h = elman_cell_reference(layer_in[t], h, w_ih, w_hh, b_ih, b_hh,
                                             nonlinearity)
                out[t] = h
            outs.append(out)
            finals_h.append(h)
            finals_c.append(c)
        layer_in = np.concatenate(outs, axis=2)
    output, h_n = layer_in, np.stack(finals_h)
    c_n = np.stack(finals_c) if lstm else None
    if batch_first and not unbatched:
        output = output.transpose(1, 0, 2)
    if unbatched:
        output, h_n = output[:, 0], h_n[:, 0]
        c_n = c_n[:, 0] if lstm else None
    return (output, (h_n, c_n)) if lstm else (output, h_n)


@st.composite
def configs(draw, mode):
    """A random layer configuration (with ``proj_size`` sometimes, for LSTM; with either
    nonlinearity for RNN)."""
    unbatched = draw(st.booleans())
    hidden = draw(st.integers(1, 5))
    proj = draw(st.integers(0, hidden - 1)) if mode == "LSTM" else 0
    nonlinearity = draw(st.sampled_from(["tanh", "relu"])) if mode == "RNN" else "tanh"
    return dict(nonlinearity=nonlinearity,
        input_size=draw(st.integers(1, 4)), hidden_size=hidden, proj_size=proj,
        num_layers=draw(st.integers(1, 3)), bidirectional=draw(st.booleans()),
        bias=draw(st.booleans()), batch_first=draw(st.booleans()),
        h0_given=draw(st.booleans()), unbatched=unbatched, T=draw(st.integers(1, 6)),
        N=None if unbatched else draw(st.integers(1, 3)), seed=draw(st.integers(0, 2**16)))


def module_kwargs(cfg, mode):
    kw = {k: cfg[k] for k in ("num_layers", "bias", "batch_first", "bidirectional")}
    if mode == "LSTM" and cfg["proj_size"]:
        kw["proj_size"] = cfg["proj_size"]
    if mode == "RNN" and cfg["nonlinearity"] != "tanh":
        kw["nonlinearity"] = cfg["nonlinearity"]
    return kw


def reference_kwargs(cfg, mode):
    """The keyword arguments of :func:`reference` for configuration ``cfg``."""
    kw = {k: cfg[k] for k in ("num_layers", "bidirectional", "batch_first")}
    return {**kw, "proj_size": cfg["proj_size"], "nonlinearity": cfg["nonlinearity"]}


def make_inputs(mode, cfg, rng, dtype="float64"):
    """``x`` and the initial state (None, ``h0`` or ``(h0, c0)``) as host arrays."""
    D = 2 if cfg["bidirectional"] else 1
    I, H, T, N = cfg["input_size"], cfg["hidden_size"], cfg["T"], cfg["N"]
    P = cfg["proj_size"] or H
    layers = D * cfg["num_layers"]
    batch = () if cfg["unbatched"] else (N,)
    if cfg["unbatched"]:
        x_shape = (T, I)
    else:
        x_shape = (N, T, I) if cfg["batch_first"] else (T, N, I)
    x = rng.standard_normal(x_shape).astype(dtype)
    if not cfg["h0_given"]:
        return x, None
    h0 = rng.standard_normal((layers, *batch, P)).astype(dtype)
    if mode != "LSTM":
        return x, h0
    return x, (h0, rng.standard_normal((layers, *batch, H)).astype(dtype))


def finals_of(state):
    """``h_n`` or ``(h_n, c_n)`` as a list."""
    return list(state) if isinstance(state, tuple) else [state]


def run_with_grads(layer, x, state, weights):
    """Forward, then backward of ``sum(output * w0) + sum(h_n * w1) (+ sum(c_n * w2))``;
    returns the outputs and every gradient as host arrays."""
    xt = Tensor(x, requires_grad=True)
    st_in = None
    if state is not None:
        st_in = tuple(Tensor(s, requires_grad=True) for s in state) \
            if isinstance(state, tuple) else Tensor(state, requires_grad=True)
    output, final = layer(xt, st_in)
    results = [output] + finals_of(final)
    loss = None
    for r, w in zip(results, weights):
        term = (r * Tensor(w)).sum()
        loss = term if loss is None else loss + term
    loss.backward()
    grads = {f"param.{n}": p.grad.numpy() for n, p in layer.named_parameters()}
    grads["x"] = xt.grad.numpy()
    if st_in is not None:
        for k, s in enumerate(finals_of(st_in)):
            grads[f"state{k}"] = s.grad.numpy()
    return [r.numpy() for r in results], grads


def rel_err(a, b):
    return float(np.max(np.abs(a - b))) / max(1.0, float(np.max(np.abs(b)))) if b.size else 0.0


def graph_ops(*roots):
    """Names of every op in the graphs behind ``roots`` (iterative walk)."""
    ops, seen, stack = [], set(), list(roots)
    while stack:
        t = stack.pop()
        if id(t) in seen or t.grad_fn is None:
            continue
        seen.add(id(t))
        ops.append(t.grad_fn.op)
        stack.extend(t.grad_fn.parents)
    return ops
