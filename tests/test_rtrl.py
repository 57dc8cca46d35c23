"""``bptt.rtrl``: real-time recurrent learning gives BPTT's gradient, computed forward in time.

Expected values: gradients recorded from PyTorch (``tests/fixtures/lab``, written by
``record_lab.py``), and our own BPTT through the fused and the unrolled layers.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, bptt, nn
from tinygrad_rnn.nn import functional as F

LAB = Path(__file__).parent / "fixtures" / "lab"
CASES = sorted(p.name[:-len("_f64.npz")] for p in LAB.glob("*_f64.npz"))
TOL = 1e-12


def load(case: str):
    f = np.load(LAB / f"{case}_f64.npz", allow_pickle=False)
    return json.loads(f["meta"].item()), f


def build(meta, f, unroll=False):
    """Our layer and head with the recorded weights, and the recorded per-step loss."""
    kwargs = {k: meta[k] for k in ("num_layers", "batch_first")}
    if meta["mode"] == "RNN":
        kwargs["nonlinearity"] = meta["nonlinearity"]
    layer = getattr(nn, meta["mode"])(meta["input_size"], meta["hidden_size"], unroll=unroll,
                                      dtype="float64", **kwargs)
    layer.load_state_dict({n: f[f"param.{n}"] for n in meta["param_names"]})
    head = nn.Linear(meta["hidden_size"], meta["head_size"], dtype="float64")
    head.load_state_dict({"weight": f["head.weight"], "bias": f["head.bias"]})
    y, w = Tensor(f["y"]), f["step_weight"]

    def step_loss(t, out_t):
        return F.mse_loss(head(out_t), y[t]) * float(w[t])
    h0 = Tensor(f["h0"])
    hx = (h0, Tensor(f["c0"])) if meta["mode"] == "LSTM" else h0
    return layer, head, step_loss, hx


def grads(layer, head) -> dict:
    out = {f"grad.{n}": p.grad.numpy() for n, p in layer.named_parameters()}
    out.update({f"grad.head.{n}": p.grad.numpy() for n, p in head.named_parameters()})
    return out


def bptt_grads(layer, head, step_loss, x, hx) -> dict:
    """The reference: sum_t step_loss(t, out_t).backward() through the whole sequence."""
    output, _ = layer(x, hx)
    if layer.batch_first and x.ndim == 3:
        output = output.transpose(0, 1)
    total = step_loss(0, output[0])
    for t in range(1, output.shape[0]):
        total = total + step_loss(t, output[t])
    total.backward()
    return grads(layer, head)


def assert_rtrl_equals_bptt(layer, head, step_loss, x, hx) -> None:
    """RTRL's gradients (of the layer and the head) equal full BPTT's on the same loss."""
    expected = bptt_grads(layer, head, step_loss, x, hx)
    layer.zero_grad()
    head.zero_grad()
    bptt.rtrl(layer, x, step_loss, hx)
    for key, value in grads(layer, head).items():
        np.testing.assert_allclose(value, expected[key], rtol=0, atol=TOL, err_msg=key)


@pytest.mark.parametrize("case", CASES)
def test_rtrl_equals_recorded_pytorch_gradients(case):
    meta, f = load(case)
    layer, head, step_loss, hx = build(meta, f)
    total = bptt.rtrl(layer, Tensor(f["x"]), step_loss, hx)
    assert abs(total.item() - float(f["total_loss"])) <= TOL * max(1, abs(float(f["total_loss"])))
    got = grads(layer, head)
    assert set(got) == {k for k in f.files if k.startswith("grad.")}
    for key, value in got.items():
        np.testing.assert_allclose(value, f[key], rtol=0, atol=TOL, err_msg=key)


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("unroll", [False, True], ids=["fused", "unrolled"])
def test_rtrl_equals_our_bptt(case, unroll):
    meta, f = load(case)
    layer, head, step_loss, hx = build(meta, f, unroll)
    expected = bptt_grads(layer, head, step_loss, Tensor(f["x"]), hx)
    layer.zero_grad()
    head.zero_grad()
    bptt.rtrl(layer, Tensor(f["x"]), step_loss, hx)
    for key, value in grads(layer, head).items():
        np.testing.assert_allclose(value, expected[key], rtol=0, atol=TOL, err_msg=key)


def test_rtrl_adds_into_existing_grads_as_backward_does():
    tg.manual_seed(1)
    layer = nn.GRU(2, 3, dtype="float64")
    x = Tensor(np.random.default_rng(0).standard_normal((7, 2)))

    def step_loss(t, out):
        return (out * out).sum() * (t + 1)
    bptt.rtrl(layer, x, step_loss)
    once = {n: p.grad.numpy().copy() for n, p in layer.named_parameters()}
    bptt.rtrl(layer, x, step_loss)
    for n, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad.numpy(), 2 * once[n], rtol=1e-14)


def test_rtrl_on_a_float32_layer_matches_float64_bptt_to_float32_precision():
    tg.manual_seed(2)
    layer = nn.LSTM(2, 3)
    x = np.random.default_rng(0).standard_normal((12, 2, 2))

    def step_loss(t, out):
        return out.sum() * 0.1
    bptt.rtrl(layer, Tensor(x, dtype="float32"), step_loss)
    got = {n: p.grad.numpy() for n, p in layer.named_parameters()}
    assert all(g.dtype == np.float32 for g in got.values())
    ref = nn.LSTM(2, 3, dtype="float64")
    ref.load_state_dict({n: p.numpy().astype("float64") for n, p in layer.named_parameters()})
    output, _ = ref(Tensor(x))
    (output.sum() * 0.1).backward()
    for n, p in ref.named_parameters():
        np.testing.assert_allclose(got[n], p.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_a_loss_that_ignores_the_output_gives_zero_gradients():
    layer = nn.RNN(2, 3, dtype="float64")
    total = bptt.rtrl(layer, Tensor(np.ones((4, 2))), lambda t, out: Tensor(float(t)))
    assert total.item() == 6.0
    assert all(not p.grad.numpy().any() for p in layer.parameters())


@pytest.mark.parametrize("make, error, words", [
    (lambda: nn.RNN(2, 3, bidirectional=True, dtype="float64"), ValueError, "bidirectional"),
    (lambda: nn.LSTM(2, 3, proj_size=2, dtype="float64"), NotImplementedError, "proj_size"),
    (lambda: nn.GRU(2, 3, num_layers=2, dropout=0.5, dtype="float64"), ValueError, "eval"),
    (lambda: nn.Linear(2, 3, dtype="float64"), TypeError, "nn.RNN"),
])
def test_unsupported_layers_are_refused_clearly(make, error, words):
    with pytest.raises(error, match=words):
        bptt.rtrl(make(), Tensor(np.ones((4, 1, 2))), lambda t, out: out.sum())


def test_bad_step_losses_and_inputs_are_refused_clearly():
    layer = nn.RNN(2, 3, dtype="float64")
    x = Tensor(np.ones((4, 1, 2)))
    with pytest.raises(TypeError, match="scalar Tensor"):
        bptt.rtrl(layer, x, lambda t, out: out)            # not a scalar
    with pytest.raises(TypeError, match="step_loss must be a callable"):
        bptt.rtrl(layer, x, None)
    with pytest.raises(ValueError, match="input_size"):    # the layer's own check
        bptt.rtrl(layer, Tensor(np.ones((4, 1, 5))), lambda t, out: out.sum())


@pytest.mark.parametrize("make, x_shape, h_shapes", [
    (lambda: nn.LSTM(3, 4, num_layers=2, dtype="float64"), (9, 3), [(2, 4), (2, 4)]),
    (lambda: nn.RNN(3, 4, num_layers=3, nonlinearity="relu", bias=False, dtype="float64"),
     (9, 2, 3), [(3, 2, 4)]),
    (lambda: nn.GRU(3, 4, bias=False, batch_first=True, dtype="float64"), (2, 9, 3),
     [(1, 2, 4)]),
    (lambda: nn.LSTM(3, 4, num_layers=2, dropout=0.5, batch_first=True,
                     dtype="float64").eval(), (2, 9, 3), [(2, 2, 4), (2, 2, 4)]),
], ids=["lstm_unbatched_h0_c0", "relu_3_layers_no_bias", "gru_no_bias_batch_first",
        "lstm_dropout_eval"])
def test_rtrl_equals_bptt_on_odd_layouts(make, x_shape, h_shapes):
    tg.manual_seed(3)
    layer, head = make(), nn.Linear(4, 2, dtype="float64")
    rng = np.random.default_rng(4)
    x = Tensor(rng.standard_normal(x_shape))
    hs = tuple(Tensor(rng.standard_normal(s) * 0.5) for s in h_shapes)
    hx = hs if len(hs) == 2 else hs[0]
    y = Tensor(rng.standard_normal((9, 2)))

    def step_loss(t, out):
        return ((head(out) - y[t]) ** 2).sum() * (t % 3 + 1)
    assert_rtrl_equals_bptt(layer, head, step_loss, x, hx)


def test_an_lstm_state_given_as_a_list_works_as_in_the_layer():
    """``lstm(x, [h0, c0])`` works (as in PyTorch), so ``rtrl(lstm, x, loss, [h0, c0])`` must
    too (it raised AttributeError: 'list' object has no attribute 'detach')."""
    tg.manual_seed(5)
    layer, head = nn.LSTM(3, 4, dtype="float64"), nn.Linear(4, 2, dtype="float64")
    rng = np.random.default_rng(6)
    x, hx = Tensor(rng.standard_normal((5, 3))), [Tensor(rng.standard_normal((1, 4)))
                                                  for _ in range(2)]

    def step_loss(t, out):
        return (head(out) ** 2).sum()
    assert_rtrl_equals_bptt(layer, head, step_loss, x, hx)
    assert np.isfinite(bptt.lyapunov_spectrum(layer, x, hx)).all()
