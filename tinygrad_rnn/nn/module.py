"""``Module`` and ``Parameter``: the containers that hold a model's weights, as in PyTorch.

Assigning a :class:`Parameter` or a :class:`Module` to an attribute registers it, so
``parameters()``, ``state_dict()``, ``zero_grad()``, ``train()``/``eval()`` and ``to()`` find
every weight of every sub-module without being told. Names are dotted paths
(``"rnn.weight_ih_l0"``, ``"fc.bias"``), exactly the keys PyTorch uses.
"""
from __future__ import annotations

from collections import OrderedDict, namedtuple
from typing import Any, Iterator, Mapping

from .. import backend
from ..autograd import no_grad
from ..tensor import Tensor

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

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ----------------------------------------------------------------------- registration
    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"cannot assign {name!r} before Module.__init__() call "
                                 f"(call super().__init__() first in {type(self).__name__})")
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def __delattr__(self, name: str) -> None:
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` under ``name`` (``None`` records an absent optional weight)."""
        setattr(self, name, param)  # None also drops an earlier registration under ``name``

    # ------------------------------------------------------------------------- traversal
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __call__(self, *args, **kwargs):
        with backend.blas_threads():   # small matrices: one BLAS thread (set_num_threads)
            return self.forward(*args, **kwargs)

    def named_parameters(self, prefix: str = "", recurse: bool = True
                         ) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs, this module's first, each parameter once."""
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_prefix, module in modules:
            for name, param in module._parameters.items():
                if id(param) not in seen:
                    seen.add(id(param))
                    yield (f"{module_prefix}.{name}" if module_prefix else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_children(self) -> Iterator[tuple[str, "Module"]]:
        yield from self._modules.items()

    def children(self) -> Iterator["Module"]:
        yield from self._modules.values()

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, "Module"]]:
        """This module and every sub-module, depth first, with dotted names (iterative)."""
        stack = [(prefix, self)]
        while stack:
            name, module = stack.pop()
            yield name, module
            children = [(f"{name}.{child_name}" if name else child_name, child)
                        for child_name, child in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self) -> Iterator["Module"]:
        for _, module in self.named_modules():
            yield module

    # ------------------------------------------------------------------------ state dicts
    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """``{dotted name: tensor}`` for every parameter (detached, sharing memory)."""
        return OrderedDict((name, p.detach()) for name, p in self.named_parameters())

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True):
        """Copy weights in from ``state_dict`` (values: Tensors or NumPy/CuPy arrays, e.g. a
        state dict exported from PyTorch). With ``strict``, missing, unexpected and mis-shaped
        keys are all listed in one ``RuntimeError``. Returns the named pair
        ``(missing_keys, unexpected_keys)``."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like (name -> tensor), got "
                            f"{type(state_dict).__name__}")
        own = dict(self.named_parameters())
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
                                + ", ".join(f'"{k}"' for k in unexpected) + ".")
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(problems))
        with no_grad():
            for name, param in own.items():
                if name in state_dict:
                    value = state_dict[name]
                    array = value.data if isinstance(value, Tensor) else value
                    param.data = backend.to_backend(array, param.backend).astype(
                        param.dtype, copy=True)
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
        """Training mode (dropout active) for this module and all sub-modules."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        """Evaluation mode (dropout off); same as ``train(False)``."""
        return self.train(False)

    def to(self, target: str) -> "Module":
        """Move every parameter to backend ``target`` (``"numpy"`` or ``"cupy"``) in place:
        the parameters stay the same leaf objects, so an optimizer built before still works."""
        backend.module_for(target, "Module.to()")
        for p in self.parameters():
            p.data = backend.to_backend(p.data, target)
            if p.grad is not None:
                p.grad.data = backend.to_backend(p.grad.data, target)
        return self

    def astype(self, dtype) -> "Module":
        """Cast every parameter to ``dtype`` in place."""
        dtype = backend.as_dtype(dtype)
        for p in self.parameters():
            p.data = p.data.astype(dtype)
            p.grad = None
        return self

    def double(self) -> "Module":
        return self.astype("float64")

    def float(self) -> "Module":
        return self.astype("float32")

    # ------------------------------------------------------------------------------- repr
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ")
                 for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


def _check_entry(name: str, value: Any, param: Parameter) -> str | None:
    """Why ``value`` cannot be loaded into ``param`` (None if it can)."""
    if not (isinstance(value, Tensor) or backend.is_array(value)):
        return (f"value for {name} has type {type(value).__name__}; expected a Tensor or an "
                "array")
    if tuple(value.shape) != param.shape:
        return (f"size mismatch for {name}: copying a param with shape {tuple(value.shape)} "
                f"from checkpoint, the shape in current model is {param.shape}.")
    if not backend.is_floating(value.dtype):
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
