"""``Optimizer``: the base class of every optimizer (parameter groups, ``step``, state dicts).

An optimizer holds the parameters it updates (leaf tensors with ``requires_grad=True``),
grouped in ``param_groups`` as in PyTorch, and a per-parameter ``state`` (momentum buffers,
moment estimates). A training step is the usual::

    opt = optim.Adam(model.parameters(), lr=1e-3)
    for x, y in data:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()

``step()`` updates every parameter that has a gradient in place (``p.data`` is modified, the
array object stays the same, so a module and the optimizer keep sharing it); parameters whose
``grad`` is None are skipped, and so is their state.

State dict layout (``state_dict()`` / ``load_state_dict()``), the same as PyTorch's, with
parameters referred to by their position (counting through all groups in order)::

    {
        "state": {                       # only parameters that have state yet
            0: {"momentum_buffer": array},                           # SGD, momentum != 0
            1: {"step": 3, "exp_avg": array, "exp_avg_sq": array},   # Adam, AdamW
               # (+ "max_exp_avg_sq": array with amsgrad=True)
            2: {"step": 3, "square_avg": array},    # RMSprop (+ "momentum_buffer",
               # with momentum != 0, + "grad_avg" with centered=True)
            3: {"step": 3, "sum": array},           # Adagrad
        },
        "param_groups": [
            {"lr": 0.1, "momentum": 0.9, ..., "params": [0, 1, 2]},  # + "param_names"
        ],
    }

Arrays are copies on the parameters' backend (so a saved state dict does not change as
training goes on), ``step`` is a Python int, options are Python numbers, bools and tuples:
everything :func:`tinygrad_rnn.save` can write. ``load_state_dict`` accepts arrays (NumPy or
CuPy) or Tensors, as :func:`tinygrad_rnn.load` returns them, and casts them to each
parameter's backend and dtype.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple, Union

from .. import backend
from ..autograd import enable_grad, no_grad
from ..tensor import Tensor

#: What optimizers accept: tensors, ``(name, tensor)`` pairs, or dicts (parameter groups).
ParamsT = Union[Iterable[Tensor], Iterable[Tuple[str, Tensor]], Iterable[Dict[str, Any]]]

#: Group entries that a learning-rate scheduler adds (``optim.lr_scheduler``): a state dict
#: may have them or not, whatever the optimizer it is loaded into has.
SCHEDULER_KEYS = frozenset({"initial_lr", "max_lr", "min_lr", "max_momentum", "base_momentum"})


class Optimizer:
    """Base class: parameter bookkeeping, ``zero_grad``, ``step`` and state dicts.

    A subclass passes its options (``defaults``) to ``__init__``, checks them in
    :meth:`_check_options` and updates one parameter in :meth:`_update`.
    """

    #: Names of the per-parameter state entries that hold arrays (checked on load).
    _array_state: Tuple[str, ...] = ()

    def __init__(self, params: ParamsT, defaults: Dict[str, Any]):
        self.defaults = dict(defaults)
        self._check_options(self.defaults)
        self.state: Dict[Tensor, Dict[str, Any]] = {}
        self.param_groups: List[Dict[str, Any]] = []
        if isinstance(params, Tensor):
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            "Tensors or dicts, but got a Tensor (wrap it in a list: [tensor])")
        _check_ordered(params)
        groups: List[Any] = list(params)  # tensors, (name, tensor) pairs or option dicts
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------------------ parameters
    def add_param_group(self, param_group: Dict[str, Any]) -> None:
        """Add a group of parameters with its own options (missing options take the
        defaults given to the constructor), e.g. ``{"params": fc.parameters(), "lr": 0.01}``."""
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        group = dict(param_group)
        params, names = _split_names(group["params"])
        if names is not None:
            group["param_names"] = names
        for i, p in enumerate(params):
            _check_param(p, i)
        if len({id(p) for p in params}) != len(params):
            raise ValueError("optimizer got a parameter group with duplicate parameters; "
                             "pass each tensor once")
        taken = {id(p) for g in self.param_groups for p in g["params"]}
        if any(id(p) in taken for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_options(group)
        self.param_groups.append(group)

    def _all_params(self) -> List[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    # ------------------------------------------------------------------------- training
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of all parameters: to ``None`` (the default, as in PyTorch:
        frees the memory, and ``step`` then skips parameters that get no new gradient), or
        to zeros in place with ``set_to_none=False``."""
        for p in self._all_params():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                p.grad.data.fill(0)

    def step(self, closure: Optional[Callable[[], Any]] = None) -> Any:
        """Update every parameter that has a gradient, in place. ``closure`` (optional)
        re-evaluates the model and returns the loss; it is called first, with grad mode on,
        and its result is returned."""
        loss = None
        self._stepped = True   # for the schedulers' "called in the wrong order" warning
        if closure is not None:
            with enable_grad():
                loss = closure()
        # The update is plain array math on p.data; no_grad makes sure that nothing a
        # subclass computes with tensors ends up in a graph.
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is None:
                        continue
                    self._update(p, p.grad.data, self.state.setdefault(p, {}), group)
        return loss

    def _update(self, p: Tensor, grad, state: Dict[str, Any], group: Dict[str, Any]) -> None:
        """Update ``p.data`` in place from its gradient ``grad`` (an array)."""
        raise NotImplementedError

    def _check_options(self, options: Dict[str, Any]) -> None:
        """Raise ``ValueError`` for an invalid option value."""

    # ----------------------------------------------------------------------- state dicts
    def state_dict(self) -> Dict[str, Any]:
        """A snapshot of the optimizer: per-parameter state and the groups' options (layout
        in the module docstring). Arrays are copies."""
        index = {id(p): i for i, p in enumerate(self._all_params())}
        state = {index[id(p)]: {k: _copy(v) for k, v in s.items()}
                 for p, s in self.state.items() if s}
        groups, start = [], 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(start, start + len(group["params"])))
            start += len(group["params"])
            groups.append(packed)
        return {"state": dict(sorted(state.items())), "param_groups": groups}

    def load_state_dict(self, state_dict: Dict[str, Any]) -> None:
        """Restore a snapshot made by :meth:`state_dict` (possibly saved and loaded with
        ``tinygrad_rnn.save``/``load``): options and per-parameter state. The optimizer must
        have been built with the same parameters in the same order."""
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            got = sorted(map(str, state_dict)) if isinstance(state_dict, dict) \
                else type(state_dict).__name__
            raise ValueError(f"expected an optimizer state dict with keys 'param_groups' and "
                             f"'state', got {got}")
        saved_groups = list(state_dict["param_groups"])
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(
                f"loaded state dict has a different number of parameter groups: "
                f"{len(saved_groups)}, but this optimizer has {len(self.param_groups)}")
        new_groups = [self._restore_group(saved, group, i)
                      for i, (saved, group) in enumerate(zip(saved_groups, self.param_groups))]
        params = self._all_params()
        new_state = {}
        for key, entry in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise ValueError(f"loaded state dict has state for parameter {i}, but this "
                                 f"optimizer has only {len(params)} parameters")
            group = next(g for g in new_groups if any(p is params[i] for p in g["params"]))
            new_state[params[i]] = self._restore_state(dict(entry), params[i], i, group)
        # Commit only once everything has been checked, so a bad state dict changes nothing.
        self.param_groups = new_groups
        self.state = new_state

    def _restore_group(self, saved: Dict[str, Any], group: Dict[str, Any],
                       i: int) -> Dict[str, Any]:
        """``group`` with the options of ``saved`` (a loaded group), after checking that it
        describes the same parameters and the same kind of optimizer."""
        if len(saved.get("params", ())) != len(group["params"]):
            raise ValueError(
                f"loaded state dict contains a parameter group that doesn't match the size of "
                f"optimizer's group: param_groups[{i}] has {len(saved.get('params', ()))} "
                f"parameters, expected {len(group['params'])}")
        ignore = {"params", "param_names"} | SCHEDULER_KEYS
        expected = set(group) - ignore
        if set(saved) - ignore != expected:
            raise ValueError(
                f"loaded state dict's param_groups[{i}] has options "
                f"{sorted(set(saved) - ignore)}, but {type(self).__name__} uses "
                f"{sorted(expected)} (was it saved from a different optimizer?)")
        # As in PyTorch, the saved group wins, scheduler entries included.
        kept = expected | (set(saved) & SCHEDULER_KEYS)
        restored = {**{k: _plain(saved[k]) for k in kept}, "params": group["params"]}
        if "param_names" in group:
            restored["param_names"] = group["param_names"]
        self._check_options(restored)
        return restored

    def _restore_state(self, entry: Dict[str, Any], p: Tensor, i: int,
                       group: Dict[str, Any]) -> Dict[str, Any]:
        """One parameter's loaded state, checked against what ``_update`` keeps and with
        arrays cast to the parameter's backend, dtype and shape."""
        expected = set(self._state_keys(group))
        if set(entry) != expected:
            raise ValueError(
                f"loaded state for parameter {i} has entries {sorted(entry)}, but "
                f"{type(self).__name__} with these options keeps {sorted(expected)}")
        out = {}
        for key, value in entry.items():
            if key not in self._array_state:
                out[key] = int(_plain(value))
                continue
            array = value.data if isinstance(value, Tensor) else value
            array = backend.to_backend(array, p.backend).astype(p.data.dtype, copy=True)
            if tuple(array.shape) != p.shape:
                raise ValueError(f"loaded state for parameter {i}: {key!r} has shape "
                                 f"{tuple(array.shape)}, but the parameter has shape {p.shape}")
            out[key] = array
        return out

    def _state_keys(self, group: Dict[str, Any]) -> Tuple[str, ...]:
        """The state entries ``_update`` keeps for a parameter of ``group``."""
        return ()

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items())
                      if k not in ("params", "param_names")]
        return "\n".join(lines + [")"])


# ------------------------------------------------------------------------------ helpers

def _split_names(params) -> Tuple[List[Tensor], Optional[List[str]]]:
    """Accept a tensor, tensors, or ``(name, tensor)`` pairs (``named_parameters()``)."""
    if isinstance(params, Tensor):
        return [params], None
    _check_ordered(params)
    items = list(params)
    named = [isinstance(item, tuple) for item in items]
    if not any(named):
        return items, None
    if not all(named):
        raise ValueError("all optimizer params should be with/without names. "
                         "Some param names are missing")
    for item in items:
        if len(item) != 2 or not isinstance(item[0], str):
            raise TypeError(f"named parameters must be (name, tensor) pairs, got {item!r:.80}")
    return [p for _, p in items], [name for name, _ in items]


def _check_ordered(params) -> None:
    # Parameters are identified by position in state dicts: a set's order changes between runs.
    if isinstance(params, (set, frozenset)):
        raise TypeError("optimizer parameters need to be organized in ordered collections, "
                        "but the ordering of tensors in sets will change between runs. "
                        "Please use a list instead.")


def _check_param(p, i: int) -> None:
    if not isinstance(p, Tensor):
        raise TypeError(f"optimizer can only optimize Tensors, but params[{i}] is a "
                        f"{type(p).__name__}")
    if not p.is_leaf:
        raise ValueError(f"can't optimize a non-leaf Tensor (params[{i}], shape {p.shape}); "
                         "optimize the leaf it was computed from, or use "
                         ".detach().requires_grad_() to make a new leaf")
    if not p.requires_grad:
        raise ValueError(f"optimizer got a Tensor that does not require grad (params[{i}], "
                         f"shape {p.shape}); pass only tensors with requires_grad=True, e.g. "
                         "[p for p in model.parameters() if p.requires_grad]")


def _check_non_negative(options: Dict[str, Any], key: str, what: str) -> None:
    value = options[key]
    if not 0.0 <= value:  # written this way so that NaN is rejected too
        raise ValueError(f"Invalid {what}: {value}")


def _copy(value):
    """A snapshot of one state entry: arrays are copied, numbers are immutable anyway."""
    return value.copy() if backend.is_array(value) else value


def _plain(value):
    """A loaded option or count as a Python value: 0-d arrays/Tensors become numbers and
    lists (as JSON or a foreign writer may give) become tuples, like ``betas``."""
    if isinstance(value, Tensor):
        value = value.data
    if backend.is_array(value):
        return value.item()
    if isinstance(value, list):
        return tuple(_plain(v) for v in value)
    return value


def lerp_(start, end, weight: float):
    """``start += weight * (end - start)`` in place, rounded as ``torch.lerp`` rounds it
    (which switches formula at ``weight = 0.5`` to stay exact at ``weight = 1``)."""
    if weight < 0.5:
        start += weight * (end - start)
    else:
        start[...] = end - (end - start) * (1 - weight)
    return start
