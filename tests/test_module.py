"""``nn.Module``, ``nn.Parameter`` and ``nn.Sequential``: registration, traversal, state
dicts, modes, moving and casting, as PyTorch users expect."""
from __future__ import annotations

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, backend, nn


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.rnn = nn.RNN(3, 4, batch_first=True)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(self.rnn(x)[0])


class Outer(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(np.ones(2, np.float32))
        self.head = Head()
        self.extra = nn.Linear(2, 1, bias=False)
        self.plain = Tensor(np.zeros(3, np.float32))  # a plain tensor: not a parameter


HEAD_NAMES = ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0",
              "fc.weight", "fc.bias"]


# ------------------------------------------------------------------------- registration

def test_parameters_and_modules_register_themselves():
    m = Outer()
    assert list(m._parameters) == ["scale"]
    assert list(m._modules) == ["head", "extra"]
    assert [name for name, _ in m.named_children()] == ["head", "extra"]
    assert list(m.children()) == [m.head, m.extra]
    assert isinstance(m.scale, nn.Parameter) and m.scale.requires_grad and m.scale.is_leaf


def test_named_parameters_order_is_own_first_then_children_in_assignment_order():
    names = [n for n, _ in Outer().named_parameters()]
    assert names == ["scale"] + [f"head.{n}" for n in HEAD_NAMES] + ["extra.weight"]
    assert [n for n, _ in Outer().named_parameters(recurse=False)] == ["scale"]
    assert len(list(Outer().parameters())) == 8


def test_reassigning_replaces_the_registration():
    m = Outer()
    m.scale = None
    m.head = None
    assert [n for n, _ in m.named_parameters()] == ["extra.weight"]
    del m.extra
    assert list(m.parameters()) == []


@pytest.mark.parametrize("name, value, match", [
    ("scale", Tensor(np.ones(2, np.float32)), "cannot assign 'Tensor' as parameter 'scale'"),
    ("scale", np.ones(2, np.float32), "cannot assign 'ndarray' as parameter 'scale'"),
    ("scale", nn.Linear(1, 1), "cannot assign 'Linear' as parameter 'scale'"),
    ("head", Tensor(np.ones(2, np.float32)), "cannot assign 'Tensor' as child module 'head'"),
    ("extra", 3, "cannot assign 'int' as child module 'extra'"),
])
def test_a_registered_weight_or_child_is_only_replaced_by_its_kind(name, value, match):
    # PyTorch refuses these; accepting them would silently drop the weights from
    # parameters(), state_dict() and the optimizer.
    m = Outer()
    before = [n for n, _ in m.named_parameters()]
    with pytest.raises(TypeError, match=match):
        setattr(m, name, value)
    assert [n for n, _ in m.named_parameters()] == before


@pytest.mark.parametrize("make", [lambda: nn.Linear(2, 2, bias=False),
                                  lambda: setattr_none(nn.Linear(2, 2), "bias")],
                         ids=["bias=False", "bias=None"])
def test_an_absent_parameter_keeps_its_slot(make):
    # As in PyTorch: only a Parameter may fill it later; a plain Tensor would otherwise
    # become an untrained attribute that forward() silently adds.
    layer = make()
    with pytest.raises(TypeError, match="cannot assign 'Tensor' as parameter 'bias'"):
        layer.bias = Tensor(np.ones(2, np.float32))
    layer.bias = nn.Parameter(np.ones(2, np.float32))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]


def setattr_none(module, name):
    setattr(module, name, None)
    return module


def test_replacing_a_parameter_keeps_its_place_in_the_order():
    # As in PyTorch: optimizers' state dicts refer to parameters by their position.
    layer = nn.Linear(2, 2)
    layer.weight = nn.Parameter(np.zeros((2, 2), np.float32))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]
    assert list(layer.state_dict()) == ["weight", "bias"]


@pytest.mark.parametrize("name, param, error, match", [
    ("a.b", nn.Parameter(np.ones(1)), KeyError, 'contain "."'),
    ("", nn.Parameter(np.ones(1)), KeyError, "be empty string"),
    ("forward", nn.Parameter(np.ones(1)), KeyError, "attribute 'forward' already exists"),
    ("w", Tensor(np.ones(1)), TypeError, "cannot assign 'Tensor' object to parameter 'w'"),
    (3, nn.Parameter(np.ones(1)), TypeError, "parameter name should be a string"),
])
def test_register_parameter_refuses_bad_names_and_non_parameters(name, param, error, match):
    m = nn.Linear(1, 1)
    with pytest.raises(error, match=match):
        m.register_parameter(name, param)
    assert [n for n, _ in m.named_parameters()] == ["weight", "bias"]


def test_an_absent_bias_can_be_registered_later():
    layer = nn.Linear(2, 2, bias=False)
    layer.register_parameter("bias", nn.Parameter(np.zeros(2, np.float32)))
    assert [n for n, _ in layer.named_parameters()] == ["weight", "bias"]


def test_a_shared_parameter_is_listed_once():
    m = Outer()
    m.extra.weight = m.head.fc.weight  # tied (shape (2, 4) now, never mind)
    params = list(m.parameters())
    assert len(params) == len({id(p) for p in params}) == 7


def test_absent_optional_parameter_is_none_and_not_listed():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    assert list(layer.state_dict()) == ["weight"]


@pytest.mark.parametrize("unset", [lambda m: m.register_parameter("bias", None),
                                   lambda m: setattr(m, "bias", None)],
                         ids=["register_parameter", "setattr"])
def test_setting_a_registered_parameter_to_none_unregisters_it(unset):
    layer = nn.Linear(3, 2)
    unset(layer)
    assert layer.bias is None
    assert [n for n, _ in layer.named_parameters()] == ["weight"]
    assert list(layer.state_dict()) == ["weight"]


def test_assigning_before_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(1))

    with pytest.raises(AttributeError, match=r"super\(\).__init__\(\)"):
        Broken()


def test_module_without_forward():
    with pytest.raises(NotImplementedError, match="Outer must define forward"):
        Outer()(Tensor([1.0]))


def test_call_runs_forward():
    m = Head()
    x = Tensor(np.ones((2, 5, 3), np.float32))
    np.testing.assert_array_equal(m(x).numpy(), m.forward(x).numpy())
    assert m(x).shape == (2, 5, 2)


# ------------------------------------------------------------------------- state dicts

def test_state_dict_keys_values_and_detachment():
    m = Head()
    sd = m.state_dict()
    assert list(sd) == HEAD_NAMES
    for name, p in m.named_parameters():
        assert not sd[name].requires_grad and sd[name].is_leaf
        np.testing.assert_array_equal(sd[name].numpy(), p.numpy())


def tied_model():
    """An embedding and an output layer sharing one weight (weight tying)."""
    model = nn.Sequential(nn.Embedding(5, 3), nn.Linear(3, 5))
    model[1].weight = model[0].weight
    return model


def test_a_tied_weight_is_in_the_state_dict_under_every_name():
    # PyTorch's state_dict lists a shared tensor under each name it is reachable by, and
    # parameters() lists it once; the keys must agree so state dicts load across both.
    model = tied_model()
    assert [n for n, _ in model.named_parameters()] == ["0.weight", "1.bias"]
    assert list(model.state_dict()) == ["0.weight", "1.weight", "1.bias"]
    every_name = [n for n, _ in model.named_parameters(remove_duplicate=False)]
    assert every_name == ["0.weight", "1.weight", "1.bias"]
    shared = nn.Linear(2, 2)
    assert list(nn.Sequential(shared, shared).state_dict()) == [
        "0.weight", "0.bias", "1.weight", "1.bias"]


def test_a_tied_state_dict_round_trips_strictly_and_a_missing_name_is_reported():
    source, target = tied_model(), tied_model()
    assert target.load_state_dict(source.state_dict()) == ([], [])
    np.testing.assert_array_equal(target[1].weight.numpy(), source[0].weight.numpy())
    assert target[1].weight is target[0].weight
    state = source.state_dict()
    del state["1.weight"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "1.weight"'):
        target.load_state_dict(state)


def test_tied_state_dict_keys_match_torch():
    torch = pytest.importorskip("torch")
    ours = tied_model()
    theirs = torch.nn.Sequential(torch.nn.Embedding(5, 3), torch.nn.Linear(3, 5))
    theirs[1].weight = theirs[0].weight
    assert list(ours.state_dict()) == list(theirs.state_dict())
    for dedup in (True, False):
        assert ([n for n, _ in ours.named_parameters(remove_duplicate=dedup)]
                == [n for n, _ in theirs.named_parameters(remove_duplicate=dedup)])
    assert ours.load_state_dict({k: v.detach().numpy() for k, v in
                                 theirs.state_dict().items()}) == ([], [])
    np.testing.assert_array_equal(ours[0].weight.numpy(), theirs[0].weight.detach().numpy())


def shared_and_tied_model() -> nn.Sequential:
    """A shared module (0 and 2) and a tied weight (1.weight is 0.weight)."""
    first, second = nn.Linear(3, 3), nn.Linear(3, 3)
    second.weight = first.weight
    return nn.Sequential(first, second, first)


def test_state_dict_lists_shared_and_tied_tensors_under_every_name_as_pytorch():
    """PyTorch's state_dict is not deduplicated (parameters() is): a model with tied weights
    must give and take the keys PyTorch's twin has, or state dicts do not move between the
    two ('Unexpected key(s): "1.weight"' before). The keys as PyTorch 2.13 lists them."""
    model = shared_and_tied_model()
    sd = model.state_dict()
    assert list(sd) == ["0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias"]
    assert len(list(model.parameters())) == 3
    fresh = {k: np.full(sd[k].shape, float(i), np.float32) for i, k in enumerate(sd)}
    assert model.load_state_dict(fresh) == ([], [])
    assert model[1].weight is model[0].weight   # still tied: the last name loaded wins
    np.testing.assert_array_equal(model[0].weight.numpy(), fresh["2.weight"])


def test_a_reassigned_parameter_or_module_keeps_its_place_as_pytorch():
    """``model.fc = nn.Linear(...)`` (a new head) and ``layer.weight = Parameter(...)`` keep
    the order of __init__ in parameters() and state_dict(); they moved to the end before."""
    head = Head()
    head.rnn = nn.RNN(3, 4)
    head.fc.weight = nn.Parameter(np.zeros((2, 4), np.float32))
    assert list(head.state_dict()) == HEAD_NAMES
    assert [n for n, _ in head.named_parameters()] == HEAD_NAMES


def test_load_state_dict_copies_arrays_and_tensors_in():
    src, dst = Head(), Head()
    sd = {k: (v.numpy() if i % 2 else v) for i, (k, v) in enumerate(src.state_dict().items())}
    assert dst.load_state_dict(sd) == ([], [])
    for (name, p), (_, q) in zip(src.named_parameters(), dst.named_parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
        assert q.is_leaf and q.requires_grad
    src.fc.bias.data[...] = 7.0  # a copy, not a view
    assert not np.any(dst.fc.bias.numpy() == 7.0)


def test_load_state_dict_copies_in_place_as_pytorch():
    # PyTorch loads with param.copy_(value): the parameter keeps its array (and C layout,
    # even from a transposed export), a state dict taken before sees the new values, and
    # a graph that saved the old values refuses to backpropagate through them.
    m = nn.Linear(3, 2)
    x = Tensor(np.ones((1, 3), np.float32), requires_grad=True)
    loss = (m(x) * m(x)).sum()
    before, array = m.state_dict(), m.weight.data
    new_weight = np.arange(6.0).reshape(3, 2).T            # (2, 3), Fortran order
    m.load_state_dict({"weight": new_weight, "bias": np.zeros(2)})
    assert m.weight.data is array and array.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(before["weight"].numpy(), new_weight)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_load_state_dict_casts_to_the_parameter_dtype():
    m = Head()
    sd = {k: v.numpy().astype(np.float64) for k, v in m.state_dict().items()}
    m.load_state_dict(sd)
    assert all(p.dtype == np.float32 for p in m.parameters())


def test_strict_load_lists_missing_unexpected_and_mis_shaped_keys_in_one_error():
    m = Head()
    before = {k: v.numpy().copy() for k, v in m.state_dict().items()}
    sd = {k: v.numpy() for k, v in Head().state_dict().items()}
    del sd["fc.bias"], sd["rnn.bias_hh_l0"]
    sd["fc.gain"] = np.ones(2, np.float32)
    sd["rnn.weight_hh_l0"] = np.ones((5, 5), np.float32)
    with pytest.raises(RuntimeError) as info:
        m.load_state_dict(sd)
    message = str(info.value)
    assert message.startswith("Error(s) in loading state_dict for Head:")
    assert 'Missing key(s) in state_dict: "rnn.bias_hh_l0", "fc.bias".' in message
    assert 'Unexpected key(s) in state_dict: "fc.gain".' in message
    assert ("size mismatch for rnn.weight_hh_l0: copying a param with shape (5, 5) from "
            "checkpoint, the shape in current model is (4, 4).") in message
    for k, v in m.state_dict().items():  # nothing was loaded
        np.testing.assert_array_equal(v.numpy(), before[k])


def test_loading_a_whole_checkpoint_says_which_entry_holds_the_state_dict():
    m = nn.Linear(2, 2)
    checkpoint = {"model": m.state_dict(), "step": 3}
    with pytest.raises(RuntimeError, match=r'Unexpected key\(s\) in state_dict: "model", '
                                           r'"step"\. .*Pass checkpoint\["model"\]'):
        m.load_state_dict(checkpoint)
    assert m.load_state_dict(checkpoint["model"]) == ([], [])


def test_non_strict_load_reports_and_loads_the_rest():
    m, src = Head(), Head()
    sd = {k: v.numpy() for k, v in src.state_dict().items() if not k.startswith("fc.")}
    sd["other.weight"] = np.zeros(1, np.float32)
    missing, unexpected = result = m.load_state_dict(sd, strict=False)
    assert missing == ["fc.weight", "fc.bias"] and unexpected == ["other.weight"]
    assert (result.missing_keys, result.unexpected_keys) == (missing, unexpected)  # as torch
    np.testing.assert_array_equal(m.rnn.weight_hh_l0.numpy(), src.rnn.weight_hh_l0.numpy())


def test_non_strict_load_still_rejects_a_wrong_shape():
    m = Head()
    with pytest.raises(RuntimeError, match="size mismatch for fc.bias"):
        m.load_state_dict({"fc.bias": np.zeros(3, np.float32)}, strict=False)


def test_load_rejects_integer_arrays_and_other_values():
    m = nn.Linear(2, 1, bias=False)
    with pytest.raises(RuntimeError, match="dtype mismatch for weight"):
        m.load_state_dict({"weight": np.zeros((1, 2), np.int64)})
    with pytest.raises(RuntimeError, match="value for weight has type list"):
        m.load_state_dict({"weight": [[0.0, 0.0]]})


# ------------------------------------------------------------------------------- modes

def test_train_and_eval_recurse_and_return_self():
    m = Outer()
    assert all(mod.training for mod in m.modules())
    assert m.eval() is m
    assert not any(mod.training for mod in m.modules())
    assert len(list(m.modules())) == 5  # Outer, Head, RNN, Linear, Linear
    m.head.train()
    assert m.head.rnn.training and m.head.fc.training and not m.training
    m.train(False)
    assert not m.head.rnn.training


def test_train_calls_each_childs_own_train_so_overrides_are_obeyed():
    # A PyTorch pattern: a frozen block overrides train() to stay in eval mode (its
    # dropout off) whatever the parent is switched to.
    class Frozen(nn.Module):
        def __init__(self):
            super().__init__()
            self.drop = nn.Dropout(0.5)

        def train(self, mode: bool = True):
            return super().train(False)

        def forward(self, x):
            return self.drop(x)

    model = nn.Sequential(Frozen(), nn.Dropout(0.5))
    model.train()
    assert [m.training for m in model.modules()] == [True, False, False, True]
    x = Tensor(np.ones(100, np.float32))
    np.testing.assert_array_equal(model[0](x).numpy(), x.numpy())


@pytest.mark.parametrize("mode", ["eval", 0, None])
def test_train_mode_must_be_a_bool(mode):
    m = Outer().eval()  # train("eval") must not silently mean True
    with pytest.raises(ValueError, match="training mode is expected to be boolean"):
        m.train(mode)
    assert not any(mod.training for mod in m.modules())


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad(set_to_none):
    m = Head()
    m(Tensor(np.ones((2, 5, 3), np.float32))).sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    m.zero_grad(set_to_none=set_to_none)
    for p in m.parameters():
        if set_to_none:
            assert p.grad is None
        else:
            assert p.grad.shape == p.shape and not np.any(p.grad.numpy())


def test_zero_grad_then_backward_gives_a_fresh_gradient():
    m = nn.Linear(2, 1)
    x = Tensor(np.array([[1.0, 2.0]], np.float32))
    for _ in range(2):
        m.zero_grad()
        m(x).sum().backward()
        np.testing.assert_array_equal(m.weight.grad.numpy(), [[1.0, 2.0]])


# -------------------------------------------------------------------------------- repr

def test_repr_is_pytorchs_layout():
    assert repr(Head()) == ("Head(\n"
                            "  (rnn): RNN(3, 4, batch_first=True)\n"
                            "  (fc): Linear(in_features=4, out_features=2, bias=True)\n"
                            ")")
    assert repr(nn.Sequential(nn.Linear(2, 3), nn.Tanh())) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): Tanh()\n"
        ")")
    assert repr(Outer()).count("\n    (rnn): RNN(3, 4, batch_first=True)") == 1


def test_parameter_repr():
    p = nn.Parameter(np.array([1.0, 2.0], np.float32))
    assert repr(p).startswith("Parameter containing:\nTensor([1., 2.]")


# -------------------------------------------------------------------------- Sequential

def test_sequential_applies_modules_in_order():
    tg.manual_seed(0)
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2), nn.Sigmoid())
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    w0, b0, w1, b1 = (p.numpy() for p in seq.parameters())
    expected = 1 / (1 + np.exp(-(np.maximum(x @ w0.T + b0, 0) @ w1.T + b1)))
    np.testing.assert_allclose(seq(Tensor(x)).numpy(), expected, rtol=1e-6, atol=1e-7)
    assert len(seq) == 4 and isinstance(seq[1], nn.ReLU) and seq[-1] is seq[3]
    assert [n for n, _ in seq.named_parameters()] == ["0.weight", "0.bias", "2.weight",
                                                      "2.bias"]


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="Sequential: argument 1 is a function, not a Module"):
        nn.Sequential(nn.Tanh(), lambda x: x)


@pytest.mark.parametrize("module, fn", [(nn.Tanh(), np.tanh),
                                        (nn.ReLU(), lambda a: np.maximum(a, 0)),
                                        (nn.Sigmoid(), lambda a: 1 / (1 + np.exp(-a)))])
def test_activation_modules(module, fn):
    x = np.linspace(-3, 3, 13)
    np.testing.assert_allclose(module(Tensor(x)).numpy(), fn(x), rtol=1e-12, atol=1e-15)
    assert list(module.parameters()) == []


# ------------------------------------------------------------------- moving and casting

def test_to_the_active_backend_keeps_the_same_leaf_parameters():
    m = Head()
    params = list(m.parameters())
    m(Tensor(np.ones((1, 2, 3), np.float32))).sum().backward()
    assert m.to(backend.name) is m
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert all(p.is_leaf and p.requires_grad and p.backend == backend.name for p in params)
    assert all(p.grad is not None and p.grad.backend == backend.name for p in params)


def test_to_numpy_moves_every_parameter_to_the_host():
    m = Head().to("numpy")
    assert all(isinstance(p.data, np.ndarray) for p in m.parameters())


@pytest.mark.parametrize("call, error, message", [
    (lambda m: m.to(), TypeError, r"Module.to\(\) needs a backend name \('numpy' or 'cupy'\) "
                                  r"or a dtype"),
    (lambda m: m.to(tg.float64, dtype=tg.float16), TypeError, "got two dtypes"),
    (lambda m: m.to("float64"), ValueError, r"'float64' is a dtype, and strings name "
                                            r"backends .*pass it as dtype='float64'")])
def test_to_with_missing_or_mistaken_arguments_says_what_it_takes(call, error, message):
    with pytest.raises(error, match=message):
        call(Head())


def test_to_an_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown backend 'tpu'; valid choices are 'numpy', "
                                         r"'cupy'"):
        Head().to("tpu")


@pytest.mark.parametrize("cast, dtype", [
    ("double", np.float64), ("float", np.float32), ("half", np.float16),
    (lambda m: m.to(tg.float64), np.float64), (lambda m: m.to(dtype=tg.float64), np.float64),
    (lambda m: m.to(backend.name, "float64"), np.float64)],
    ids=["double", "float", "half", "to_dtype", "to_dtype_keyword", "to_backend_and_dtype"])
def test_double_and_float_cast_in_place(cast, dtype):
    """Also ``model.to(torch.float64)`` (it was read as a backend name and refused)."""
    m = Head().double() if cast == "float" else Head()
    params = list(m.parameters())
    m(Tensor(np.ones((1, 2, 3), m.fc.weight.dtype))).sum().backward()
    assert (cast(m) if callable(cast) else getattr(m, cast)()) is m
    assert [id(p) for p in m.parameters()] == [id(p) for p in params]
    assert all(p.dtype == dtype and p.is_leaf and p.requires_grad for p in params)
    out = m(Tensor(np.ones((1, 2, 3), dtype)))
    assert out.dtype == dtype


def test_casting_keeps_the_gradients_cast_and_to_accepts_a_dtype():
    # PyTorch's Module.to(dtype)/.double() convert p.grad too; dropping it would make the
    # next optimizer step silently do nothing.
    m = nn.Linear(2, 1)
    m(Tensor(np.array([[1.0, 2.0]], np.float32))).sum().backward()
    assert m.to(np.float64) is m
    assert m.weight.dtype == m.weight.grad.dtype == np.float64
    np.testing.assert_array_equal(m.weight.grad.numpy(), [[1.0, 2.0]])
    np.testing.assert_array_equal(m.bias.grad.numpy(), [1.0])


def test_slicing_a_sequential_gives_a_sequential_sharing_the_modules():
    first, second = nn.Linear(2, 3), nn.Tanh()
    model = nn.Sequential(first, second, nn.Linear(3, 1))
    head = model[0:2]
    assert isinstance(head, nn.Sequential) and len(head) == 2
    assert head[0] is first and head[1] is second
    assert [n for n, _ in head.named_parameters()] == ["0.weight", "0.bias"]
    # the names are kept, as PyTorch keeps them (they were renumbered from "0" before)
    assert [n for n, _ in model[1:].named_parameters()] == ["2.weight", "2.bias"]
    assert list(model[::-2].state_dict()) == ["2.weight", "2.bias", "0.weight", "0.bias"]


# ------------------------------------------------------------------------------ buffers

class WithBuffers(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.register_buffer("running_mean", Tensor(np.arange(2.0, dtype=np.float32)))
        self.register_buffer("count", Tensor(np.array(3, dtype=np.int64)))
        self.register_buffer("scratch", Tensor(np.zeros(2, np.float32)), persistent=False)


def test_buffers_are_in_the_state_dict_but_not_parameters():
    m = WithBuffers()
    # PyTorch's order: each module's parameters, then its buffers, then its children.
    assert list(m.state_dict()) == ["running_mean", "count", "fc.weight", "fc.bias"]
    assert [n for n, _ in m.named_parameters()] == ["fc.weight", "fc.bias"]
    assert [n for n, _ in m.named_buffers()] == ["running_mean", "count", "scratch"]
    assert all(b is not p for b in m.buffers() for p in m.parameters())


def test_buffers_load_move_cast_and_stay_buffers_when_reassigned():
    m, other = WithBuffers(), WithBuffers()
    other.running_mean = Tensor(np.array([5.0, 6.0], np.float32))   # still a buffer
    assert "running_mean" in other.state_dict()
    m.load_state_dict(other.state_dict())
    np.testing.assert_array_equal(m.running_mean.numpy(), [5.0, 6.0])
    m.to(backend.name).double()
    assert m.running_mean.dtype == np.float64 and m.count.dtype == np.int64
    assert m.running_mean.backend == backend.name


def test_missing_buffer_is_reported_by_strict_load():
    state = WithBuffers().state_dict()
    del state["count"]
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "count"'):
        WithBuffers().load_state_dict(state)


@pytest.mark.parametrize("name, value, error, match", [
    ("a.b", Tensor(np.zeros(1)), KeyError, 'contain "."'),
    ("", Tensor(np.zeros(1)), KeyError, 'be empty string ""'),
    ("fc", Tensor(np.zeros(1)), KeyError, "attribute 'fc' already exists"),
    ("mask", np.zeros(1), TypeError, "cannot assign 'ndarray' object to buffer 'mask'"),
])
def test_bad_buffers_are_refused(name, value, error, match):
    with pytest.raises(error, match=match):
        WithBuffers().register_buffer(name, value)


# --------------------------------------------------------------- apply, freezing, traversal

def test_apply_visits_children_first_then_self():
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Tanh(), nn.Linear(3, 1)))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "Tanh", "Linear", "Sequential", "Sequential"]


def test_apply_initialises_weights():
    def init_weights(m):
        if isinstance(m, nn.Linear):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).apply(init_weights)
    out = model(Tensor(np.array([[1.0, 2.0]], np.float32)))
    assert out.item() == 9.0


def test_requires_grad_freezes_and_unfreezes():
    m = Head()
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    m.fc.requires_grad_()
    assert [n for n, p in m.named_parameters() if p.requires_grad] == ["fc.weight", "fc.bias"]


def test_children_modules_and_shared_modules_come_once():
    shared = nn.Linear(2, 2)
    model = nn.Sequential(shared, nn.Tanh(), shared)
    assert [n for n, _ in model.named_modules()] == ["", "0", "1"]
    assert len(list(model.named_modules(remove_duplicate=False))) == 4
    assert list(model.children()) == [shared, model[1]]
    assert list(model.modules())[1] is shared
