"""Losses, ``embedding``, ``layer_norm`` and ``one_hot`` of ``nn.functional`` against values
and gradients recorded from PyTorch (``tests/fixtures/nn_extra``, see ``record_nn11.py``),
in float64 (1e-12) and float32, and the same through the loss modules."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.nn import functional as F

FOLDER = Path(__file__).parent / "fixtures" / "nn_extra"
GRAD_CASES = sorted(p for p in FOLDER.glob("*_f*.npz"))
ONE_HOT_CASES = sorted(FOLDER.glob("one_hot*.npz"))
TOL = {"float64": dict(rtol=1e-12, atol=1e-13), "float32": dict(rtol=2e-5, atol=2e-6)}
MODULES = {"nll_loss": nn.NLLLoss, "cross_entropy": nn.CrossEntropyLoss,
           "binary_cross_entropy": nn.BCELoss, "binary_cross_entropy_with_logits":
           nn.BCEWithLogitsLoss, "l1_loss": nn.L1Loss, "huber_loss": nn.HuberLoss}

if not GRAD_CASES:
    pytest.skip("no nn_extra fixtures (run tests/fixtures/record.py --only nn_extra)",
                allow_module_level=True)


def read(path):
    with np.load(path, allow_pickle=False) as f:
        arrays = {k: f[k] for k in f.files}
    return json.loads(arrays.pop("meta").item()), arrays


def inputs(meta, arrays):
    names = meta["tensors"] + meta["tensor_kwargs"]
    return {n: Tensor(arrays[f"in_{n}"], requires_grad=n in meta["grads"]) for n in names}


def check(meta, arrays, out, tensors):
    tol = TOL[meta["dtype"]]
    assert out.dtype == arrays["out"].dtype and out.shape == arrays["out"].shape
    np.testing.assert_allclose(out.numpy(), arrays["out"], **tol, err_msg="out")
    (out * Tensor(arrays["w_out"])).sum().backward()
    for name in meta["grads"]:
        np.testing.assert_allclose(tensors[name].grad.numpy(), arrays[f"grad_{name}"], **tol,
                                   err_msg=f"grad_{name}")


@pytest.mark.parametrize("path", GRAD_CASES, ids=lambda p: p.stem)
def test_functional_matches_pytorch(path):
    meta, arrays = read(path)
    t = inputs(meta, arrays)
    out = getattr(F, meta["fn"])(*[t[n] for n in meta["tensors"]],
                                 **{n: t[n] for n in meta["tensor_kwargs"]}, **meta["kwargs"])
    check(meta, arrays, out, t)


@pytest.mark.parametrize("path", [p for p in GRAD_CASES
                                  if read(p)[0]["fn"] in MODULES], ids=lambda p: p.stem)
def test_loss_module_matches_pytorch(path):
    meta, arrays = read(path)
    t = inputs(meta, arrays)
    module = MODULES[meta["fn"]](**{n: t[n] for n in meta["tensor_kwargs"]}, **meta["kwargs"])
    check(meta, arrays, module(t["input"], t["target"]), t)


@pytest.mark.parametrize("path", ONE_HOT_CASES, ids=lambda p: p.stem)
def test_one_hot_matches_pytorch(path):
    meta, arrays = read(path)
    out = F.one_hot(Tensor(arrays["in_input"]), meta["num_classes"])
    assert out.dtype == np.int64
    np.testing.assert_array_equal(out.numpy(), arrays["out"])
