"""``Module`` and ``Parameter``: the containers that hold a model's weights, as in PyTorch.

Assigning a :class:`Parameter` or a :class:`Module` to an attribute registers it, so
``parameters()``, ``state_dict()``, ``zero_grad()``, ``train()``/``eval()`` and ``to()`` find
every weight of every sub-module without being told. Names are dotted paths
(``"rnn.weight_ih_l0"``, ``"fc.bias"``), exactly the keys PyTorch uses.

A *buffer* (``register_buffer``) is a tensor a module keeps that is not trained (running
statistics, a fixed mask): it is in ``state_dict()`` (unless ``persistent=False``) and moves
with ``to()``, but ``parameters()`` and optimizers never see it.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict, namedtuple
from typing import Any, Callable, Iterator, Mapping

from .. import backend
from ..autograd import no_grad
from ..tensor import Tensor, to_arguments

#: What ``load_state_dict`` returns, as PyTorch's ``_IncompatibleKeys``.
IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class Parameter(Tensor):
    """A leaf tensor that a :class:`Module` owns and an optimizer updates
    (``requires_grad=True`` by default)."""
    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True, dtype=None):
        super().__init__(data, requires_grad=requires_grad, dtype=dtype)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of every layer and model. Subclasses set parameters and sub-modules as
    attributes in ``__init__`` and define ``forward``; call the module to run it."""

    # Set in __init__ with object.__setattr__ (declared here for readers and type checkers).
    _parameters: "OrderedDict[str, Parameter | None]"  # None: an absent optional weight
    _buffers: "OrderedDict[str, Tensor | None]"
    _non_persistent_buffers: set
    _modules: "OrderedDict[str, Module]"
    training: bool

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----------------------------------------------------------------------- registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__})")
        if name in self._buffers and not isinstance(value, (Parameter, Module)):
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                                "(torch.Tensor or None expected)")
            self._buffers[name] = value  # a buffer stays a buffer when it is reassigned
            object.__setattr__(self, name, value)
            return
        _refuse_replacing(self, name, value)
        registry = (self._parameters if isinstance(value, Parameter)
                    else self._modules if isinstance(value, Module) else None)
        if value is None and name in self._parameters:
            registry = self._parameters  # an absent weight keeps its slot, as in PyTorch
        for other in (self._parameters, self._modules):
            if other is not registry:
                other.pop(name, None)
        self._forget_buffer(name)
        if registry is not None:
            # Replacing an entry keeps its place, as in PyTorch: the order of parameters()
            # is what optimizers' state dicts index by.
            registry[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._forget_buffer(name)
        object.__delattr__(self, name)

    def _check_new_name(self, kind: str, name, registry: Mapping | None = None) -> None:
        """Refuse ``name`` for a new ``kind`` entry (``"parameter"``, ``"module"`` or
        ``"buffer"``) with PyTorch's errors: not a string, empty, dotted, or (given the
        ``registry`` it goes into) already meaning something else, a method, an attribute or
        another kind of entry. An attribute set to None is free: ``Linear(2, 2, bias=False)``
        may register a ``bias`` later, as in PyTorch."""
        if not isinstance(name, str):
            raise TypeError(f"{kind} name should be a string. Got {type(name).__name__}")
        if name == "":
            raise KeyError(f'{kind} name can\'t be empty string ""')
        if "." in name:
            raise KeyError(f'{kind} name can\'t contain "."'
                           + (f", got: {name}" if kind == "module" else ""))
        if registry is not None and hasattr(self, name) and name not in registry \
                and getattr(self, name) is not None:
            raise KeyError(f"attribute '{name}' already exists")

    def _forget_buffer(self, name: str) -> None:
        self._buffers.pop(name, None)
        self._non_persistent_buffers.discard(name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name`` (``None`` records an absent optional weight)."""
        self._check_new_name("parameter", name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign '{type(param).__name__}' object to parameter "
                            f"'{name}' (torch.nn.Parameter or None required)")
        self._modules.pop(name, None)
        self._forget_buffer(name)
        self._parameters[name] = param  # None: a slot that only a Parameter may fill later
        object.__setattr__(self, name, param)

    def add_module(self, name: str, module: "Module | None") -> None:
        """Register ``module`` as a child under ``name`` (what ``self.name = module`` does,
        for names that are not identifiers, e.g. ``"0"``, or that come from data)."""
        if module is not None and not isinstance(module, Module):  # checked first, as PyTorch
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        self._check_new_name("module", name, self._modules)
        self._parameters.pop(name, None)
        self._forget_buffer(name)
        if module is None:          # None records an absent sub-module
            self._modules.pop(name, None)
        else:                       # (replacing an entry keeps its place in the order)
            self._modules[name] = module
        object.__setattr__(self, name, module)

    register_module = add_module

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Keep ``tensor`` under ``name`` as state that is not trained: saved in
        ``state_dict()`` (unless ``persistent=False``) and moved by ``to()``, never returned
        by ``parameters()``. ``None`` records an absent buffer."""
        self._check_new_name("buffer", name, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"cannot assign '{type(tensor).__name__}' object to buffer "
                            f"'{name}' (torch Tensor or None required)")
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)
        object.__setattr__(self, name, tensor)

    # ------------------------------------------------------------------------- traversal
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        with backend.blas_threads():   # small matrices: one BLAS thread (set_num_threads)
            return self.forward(*args, **kwargs)

    def named_parameters(self, prefix: str = "", recurse: bool = True,
                         remove_duplicate: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs, this module's first, each parameter once
        (under every name it has with ``remove_duplicate=False``: tied weights)."""
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        """The direct sub-modules with their names, each module once (as PyTorch)."""
        seen: set[int] = set()
        for name, module in self._modules.items():
            if module is not None and id(module) not in seen:
                seen.add(id(module))
                yield name, module

    def children(self) -> Iterator["Module"]:
        for _, module in self.named_children():
            yield module

    def named_modules(self, memo: set | None = None, prefix: str = "",
                      remove_duplicate: bool = True) -> Iterator[tuple[str, "Module"]]:
        """This module and every sub-module, depth first, with dotted names (iterative). A
        module reachable twice (shared) comes once, unless ``remove_duplicate=False``."""
        seen = set() if memo is None else memo
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if remove_duplicate:
                if id(module) in seen:
                    continue
                seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module._modules.items() if child is not None]
            stack.extend(reversed(children))

    def named_buffers(self, prefix: str = "", recurse: bool = True,
                      remove_duplicate: bool = True) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, buffer)`` pairs, as :meth:`named_parameters` (absent ones
        skipped)."""
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def _named_members(self, registry: str, prefix: str, recurse: bool,
                       remove_duplicate: bool) -> Iterator[tuple[str, Any]]:
        """The entries of each module's ``registry`` (``"_parameters"`` or ``"_buffers"``)
        with dotted names; a tensor reachable twice comes once if ``remove_duplicate``."""
        seen: set[int] = set()
        modules = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
                   if recurse else [(prefix, self)])
        for module_prefix, module in modules:
            for name, member in getattr(module, registry).items():
                if member is None or (remove_duplicate and id(member) in seen):
                    continue
                seen.add(id(member))
                yield (f"{module_prefix}.{name}" if module_prefix else name), member

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    def apply(self, fn: Callable[["Module"], Any]) -> "Module":
        """Call ``fn`` on every sub-module (children first, depth first) and then on this
        module, e.g. ``model.apply(init_weights)``; returns ``self``."""
        if not callable(fn):
            raise TypeError(f"apply: expected a function of a Module, got "
                            f"{type(fn).__name__}")
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        """Set ``requires_grad`` of every parameter (``False`` freezes the module)."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    # ------------------------------------------------------------------------ state dicts
    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """``{dotted name: tensor}`` for every parameter and persistent buffer (detached,
        sharing memory), each module's parameters then its buffers, as in PyTorch."""
        return OrderedDict((name, t.detach()) for name, t in self._state_entries().items())

    def _state_entries(self) -> "OrderedDict[str, Tensor]":
        """The tensors ``state_dict`` holds, by name. A tied weight or a shared module is
        listed under *every* name it is reachable by, as in PyTorch, so state dicts keep the
        same keys in both frameworks (``parameters()`` lists it once)."""
        entries: OrderedDict[str, Tensor] = OrderedDict()
        for prefix, module in self.named_modules(remove_duplicate=False):
            dot = f"{prefix}." if prefix else ""
            for name, param in module._parameters.items():
                if param is not None:
                    entries[dot + name] = param
            for name, buf in module._buffers.items():
                if buf is not None and name not in module._non_persistent_buffers:
                    entries[dot + name] = buf
        return entries

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True):
        """Copy weights in from ``state_dict`` (values: Tensors or NumPy/CuPy arrays, e.g. a
        state dict exported from PyTorch). With ``strict``, missing, unexpected and mis-shaped
        keys are all listed in one ``RuntimeError``. Returns the named pair
        ``(missing_keys, unexpected_keys)``."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like (name -> tensor), got "
                            f"{type(state_dict).__name__}")
        own = self._state_entries()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems = []
        for name, param in own.items():
            if name in state_dict:
                problem = _check_entry(name, state_dict[name], param)
                if problem:
                    problems.append(problem)
        if strict:
            if missing:
                problems.insert(0, "Missing key(s) in state_dict: "
                                + ", ".join(f'"{k}"' for k in missing) + ".")
            if unexpected:
                problems.insert(len(missing) > 0, "Unexpected key(s) in state_dict: "
                                + ", ".join(f'"{k}"' for k in unexpected) + "."
                                + _nested_hint(state_dict, unexpected))
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(problems))
        with no_grad():
            for name, param in own.items():
                if name in state_dict:
                    value = state_dict[name]
                    array = value.data if isinstance(value, Tensor) else value
                    # In place, as PyTorch's param.copy_(value): the same array keeps its
                    # layout, state dicts taken before see the new values, and a graph that
                    # saved the old values refuses to backpropagate through them.
                    param.copy_(Tensor._wrap(backend.to_backend(array, param.backend)))
        return IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------------------------ modes
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the accumulated gradients of all parameters."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.data[...] = 0

    def train(self, mode: bool = True) -> "Module":
        """Training mode (dropout active) for this module and all sub-modules. Each child's
        own ``train`` is called, as in PyTorch, so a subclass that overrides it (a frozen
        block that stays in eval mode) is obeyed."""
        if not isinstance(mode, bool):  # e.g. train("eval") would otherwise mean True
            raise ValueError("training mode is expected to be boolean")
        object.__setattr__(self, "training", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode (dropout off); same as ``train(False)``."""
        return self.train(False)

    def to(self, target=None, dtype=None) -> "Module":
        """Move every parameter to backend ``target`` (``"numpy"`` or ``"cupy"``) and/or cast
        it to ``dtype``, in place: ``model.to("cupy")``, ``model.to(tg.float64)``,
        ``model.to(dtype=tg.float16)``, as ``Tensor.to``. The parameters stay the same leaf
        objects, so an optimizer built before still works."""
        target, dtype = to_arguments(target, dtype, "Module.to()")
        if target is not None:
            self._to_backend(target)
        return self if dtype is None else self.astype(dtype)

    def _to_backend(self, target: str) -> None:
        backend.module_for(target, "Module.to()")
        for p in self.parameters():
            p.data = backend.to_backend(p.data, target)
            if p.grad is not None:
                p.grad.data = backend.to_backend(p.grad.data, target)
        for buf in self.buffers():
            buf.data = backend.to_backend(buf.data, target)

    def astype(self, dtype) -> "Module":
        """Cast every parameter (and its gradient), and every floating-point buffer, to
        ``dtype`` in place (integer buffers such as counters keep their dtype, as in
        PyTorch)."""
        dtype = backend.as_dtype(dtype)
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            if p.grad is not None:  # kept, as in PyTorch: a step after the cast still applies
                p.grad.data = p.grad.data.astype(dtype)
        for buf in self.buffers():
            if backend.is_floating(buf.dtype):
                buf.data = buf.data.astype(dtype)
        return self

    def half(self) -> "Module":
        return self.astype("float16")

    def double(self) -> "Module":
        return self.astype("float64")

    def float(self) -> "Module":
        return self.astype("float32")

    # ------------------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ""

    def _child_lines(self) -> list[str]:
        return [f"({name}): " + _indent(repr(child)) for name, child in self._modules.items()]

    def __repr__(self) -> str:
        """PyTorch's layout: ``Name(extra)`` for a leaf, else one indented line per extra
        line and per child, ``(name): Child(...)``."""
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = self._child_lines()
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"


def _refuse_replacing(module: Module, name: str, value: Any) -> None:
    """PyTorch's rule: a registered parameter can only be replaced by a ``Parameter`` or
    ``None``, a sub-module by a ``Module`` or ``None``. Anything else (``m.weight = w * 2``,
    a plain Tensor) raises, instead of silently taking the weight away from
    ``parameters()``, ``state_dict()`` and the optimizer."""
    if value is None:
        return
    if name in module._parameters and not isinstance(value, Parameter):
        raise TypeError(f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                        "(torch.nn.Parameter or None expected)")
    if name in module._modules and not isinstance(value, (Module, Parameter)):
        raise TypeError(f"cannot assign '{type(value).__name__}' as child module '{name}' "
                        "(torch.nn.Module or None expected)")


def _nested_hint(state_dict: Mapping, unexpected: list) -> str:
    """A checkpoint ``{"model": state_dict, "optimizer": ...}`` passed whole is the usual
    cause of unexpected keys whose values are dicts: say which key to pass instead."""
    nested = [k for k in unexpected if isinstance(state_dict[k], Mapping)]
    if not nested:
        return ""
    return (f" (the value under \"{nested[0]}\" is itself a dict: is this a checkpoint "
            f"holding the state dict? Pass checkpoint[\"{nested[0]}\"])")


def _indent(text: str) -> str:
    return text.replace("\n", "\n  ")


def _check_entry(name: str, value: Any, param: Tensor) -> str | None:
    """Why ``value`` cannot be loaded into ``param`` (a parameter or a buffer; None if it
    can)."""
    if not (isinstance(value, Tensor) or backend.is_array(value)):
        return (f"value for {name} has type {type(value).__name__}; expected a Tensor or an "
                "array")
    if tuple(value.shape) != param.shape:
        return (f"size mismatch for {name}: copying a param with shape {tuple(value.shape)} "
                f"from checkpoint, the shape in current model is {param.shape}.")
    if backend.is_floating(param.dtype) and not backend.is_floating(value.dtype):
        return (f"dtype mismatch for {name}: expected a floating point array, got "
                f"{value.dtype}.")
    return None


def check_input_dtype(owner: str, input: Tensor, weight: Tensor) -> None:
    """Refuse an input whose dtype differs from the layer's weights (NumPy would silently
    promote float32 weights to float64, or an int input to float)."""
    if input.dtype != weight.dtype:
        raise TypeError(f"{owner}: input dtype {input.dtype} does not match the parameters' "
                        f"dtype {weight.dtype}; convert the input (.float()/.double()) or the "
                        "model (.float()/.double())")


def warn_dropout_without_layers(dropout: float, num_layers: int) -> None:
    """PyTorch's warning for ``nn.RNN/LSTM/GRU(..., dropout > 0, num_layers=1)``: dropout acts
    only *between* stacked layers, so with one layer it does nothing."""
    if dropout > 0 and num_layers == 1:
        warnings.warn("dropout option adds dropout after all but last recurrent layer, so "
                      "non-zero dropout expects num_layers greater than 1, but got "
                      f"dropout={dropout} and num_layers={num_layers}", UserWarning,
                      stacklevel=3)

