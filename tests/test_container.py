"""``ModuleList``, ``ModuleDict``, ``Sequential`` extras, ``Identity``, ``Flatten``,
``Softmax``/``LogSoftmax`` modules, and PyTorch's ``repr`` layout (the expected strings are
what torch 2.13 prints for the same models)."""
from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
import pytest

from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.errors import ShapeError

TORCH_REPR = """Sequential(
  (0): Linear(in_features=2, out_features=3, bias=True)
  (1): ModuleList(
    (0): ReLU()
    (1): Linear(in_features=3, out_features=1, bias=True)
  )
  (2): ModuleDict(
    (a): Tanh()
  )
  (3): Flatten(start_dim=1, end_dim=-1)
  (4): Softmax(dim=1)
  (5): LogSoftmax(dim=-1)
  (6): Identity()
)"""


def test_repr_matches_pytorch():
    model = nn.Sequential(nn.Linear(2, 3), nn.ModuleList([nn.ReLU(), nn.Linear(3, 1)]),
                          nn.ModuleDict({"a": nn.Tanh()}), nn.Flatten(), nn.Softmax(dim=1),
                          nn.LogSoftmax(dim=-1), nn.Identity())
    assert repr(model) == TORCH_REPR


def test_module_list_repr_collapses_repeats_as_pytorch():
    layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.Linear(2, 2), nn.Tanh(),
                            nn.Linear(2, 2)])
    assert repr(layers) == ("ModuleList(\n"
                            "  (0-2): 3 x Linear(in_features=2, out_features=2, bias=True)\n"
                            "  (3): Tanh()\n"
                            "  (4): Linear(in_features=2, out_features=2, bias=True)\n"
                            ")")
    assert repr(nn.ModuleList()) == "ModuleList()"


def test_module_list_registers_its_entries():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList(nn.Linear(2, 2) for _ in range(2))
            self.layers.append(nn.Linear(2, 1))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x
    model = Stack()
    assert [n for n, _ in model.named_parameters()] == [
        f"layers.{i}.{w}" for i in range(3) for w in ("weight", "bias")]
    assert model(Tensor(np.ones((4, 2), np.float32))).shape == (4, 1)


def test_module_list_behaves_like_a_list():
    a, b, c, d = nn.Tanh(), nn.ReLU(), nn.Sigmoid(), nn.Identity()
    layers = nn.ModuleList([a, b])
    layers += [c]
    layers.insert(0, d)
    assert list(layers) == [d, a, b, c] and len(layers) == 4
    assert layers[-1] is c and list(layers[1:3]) == [a, b]
    assert isinstance(layers[1:3], nn.ModuleList)
    del layers[0]
    assert list(layers) == [a, b, c] and list(layers._modules) == ["0", "1", "2"]
    layers[1] = d
    assert list(layers) == [a, d, c]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        layers[3]
    with pytest.raises(TypeError, match="not a Module"):
        layers.append(lambda x: x)


def test_module_dict_behaves_like_a_dict():
    fc, act = nn.Linear(2, 2), nn.Tanh()
    heads = nn.ModuleDict([("fc", fc), ("act", act)])
    assert list(heads) == ["fc", "act"] and heads["fc"] is fc and "act" in heads
    assert [n for n, _ in heads.named_parameters()] == ["fc.weight", "fc.bias"]
    assert heads.pop("fc") is fc and list(heads.keys()) == ["act"]
    heads.update({"out": nn.Linear(2, 1)})
    assert list(heads.items())[1][0] == "out" and len(heads) == 2
    heads.clear()
    assert len(heads) == 0 and list(heads.parameters()) == []


def test_module_dict_from_another_module_dict():
    # As in PyTorch: a ModuleDict is accepted wherever a mapping is.
    first = nn.ModuleDict({"x": nn.Tanh(), "y": nn.ReLU()})
    copy = nn.ModuleDict(first)
    assert list(copy) == ["x", "y"] and copy["y"] is first["y"]
    merged = nn.ModuleDict({"z": nn.Sigmoid()})
    merged.update(first)
    assert list(merged) == ["z", "x", "y"]


@pytest.mark.parametrize("key, error, match", [
    ("a.b", KeyError, "contain"),
    ("", KeyError, "empty"),
    ("train", KeyError, "attribute 'train' already exists"),
    (3, TypeError, "module name should be a string"),
])
def test_module_dict_bad_keys(key, error, match):
    with pytest.raises(error, match=match):
        nn.ModuleDict({key: nn.Tanh()})


def test_sequential_from_ordered_dict_and_append():
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(3, 2)), ("act", nn.Tanh())]))
    seq.append(nn.Linear(2, 1))
    assert [n for n, _ in seq.named_parameters()] == ["fc.weight", "fc.bias", "2.weight",
                                                     "2.bias"]
    assert seq(Tensor(np.ones((5, 3), np.float32))).shape == (5, 1)


def test_a_slice_of_a_sequential_keeps_the_names():
    # PyTorch keeps the original keys, so a slice's state dict names the same weights.
    seq = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1), nn.ReLU())
    assert list(seq[2:].state_dict()) == ["2.weight", "2.bias"]
    assert [name for name, _ in seq[::2].named_children()] == ["0", "2"]
    assert seq[2:][0] is seq[2]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(3, 2)), ("act", nn.Tanh())]))
    assert repr(named[1:]) == "Sequential(\n  (act): Tanh()\n)"


def test_sequential_is_edited_like_a_list_as_in_pytorch():
    first, act, last = nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1)
    seq = nn.Sequential(first, act, last)
    head = nn.Linear(3, 4)
    seq[-1] = head                      # a new head (fine-tuning), same name "2"
    assert seq[2] is head and list(seq.state_dict())[-2:] == ["2.weight", "2.bias"]
    assert seq.insert(1, nn.ReLU()) is seq
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Tanh", "Linear"]
    del seq[1]
    assert list(seq) == [first, act, head] and [n for n, _ in seq.named_children()] == [
        "0", "1", "2"]
    assert seq.pop(1) is act and seq.extend([act]) is seq and list(seq) == [first, head, act]
    del seq[:2]
    assert list(seq) == [act] and [n for n, _ in seq.named_children()] == ["0"]
    with pytest.raises(IndexError, match="index 3 is out of range"):
        seq[3] = nn.Tanh()
    with pytest.raises(TypeError, match="not a Module"):
        seq[0] = 3


def test_sequential_slices_match_torch():
    torch = pytest.importorskip("torch")
    ours = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1), nn.ReLU())
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1),
                                 torch.nn.ReLU())
    for index in [slice(1, 3), slice(None, None, 2), slice(-2, None), slice(3, 1, -1)]:
        assert repr(ours[index]) == repr(theirs[index])
        assert list(ours[index].state_dict()) == list(theirs[index].state_dict())


def test_identity_returns_its_input():
    x = Tensor(np.ones(3))
    assert nn.Identity(54, unused="argument")(x) is x


@pytest.mark.parametrize("start, end, shape", [(1, -1, (2, 60)), (0, -1, (120,)),
                                               (0, 1, (6, 4, 5)), (-2, -1, (2, 3, 20)),
                                               (2, 2, (2, 3, 4, 5))])
def test_flatten_shapes(start, end, shape):
    x = np.arange(120.0).reshape(2, 3, 4, 5)
    out = nn.Flatten(start, end)(Tensor(x))
    np.testing.assert_array_equal(out.numpy(), x.reshape(shape))


def test_flatten_errors():
    with pytest.raises(ShapeError, match="cannot come after"):
        nn.Flatten(2, 1)(Tensor(np.zeros((2, 3, 4))))
    with pytest.raises(IndexError, match="Dimension out of range"):
        nn.Flatten(3)(Tensor(np.zeros((2, 3))))


def test_softmax_modules_and_implicit_dim_warning():
    x = np.random.default_rng(0).standard_normal((3, 4))
    e = np.exp(x - x.max(axis=0))
    np.testing.assert_allclose(nn.Softmax(dim=0)(Tensor(x)).numpy(), e / e.sum(axis=0),
                               rtol=1e-13)
    np.testing.assert_allclose(nn.LogSoftmax(dim=0)(Tensor(x)).numpy(),
                               np.log(e / e.sum(axis=0)), rtol=1e-13)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmax"):
        out = nn.Softmax()(Tensor(x))      # 2-D: PyTorch's legacy choice is dim=1
    e1 = np.exp(x - x.max(axis=1, keepdims=True))
    np.testing.assert_allclose(out.numpy(), e1 / e1.sum(axis=1, keepdims=True), rtol=1e-13)


@pytest.mark.parametrize("make", [lambda: nn.RNN(2, 3, dropout=0.5),
                                  lambda: nn.LSTM(2, 3, dropout=0.2),
                                  lambda: nn.GRU(2, 3, dropout=1.0)])
def test_dropout_with_one_layer_warns_as_pytorch(make):
    with pytest.warns(UserWarning, match="non-zero dropout expects num_layers greater than 1"):
        make()


def test_no_dropout_warning_when_it_applies():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nn.RNN(2, 3, num_layers=2, dropout=0.5)
        nn.LSTM(2, 3)
