"""Containers of sub-modules: ``Sequential``, ``ModuleList`` and ``ModuleDict``.

A plain Python list or dict of layers hides them from the parent module (their weights would
be missing from ``parameters()``, ``state_dict()`` and ``to()``); these containers register
each entry as a child, named by its position (``"0"``, ``"1"``…) or its key.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Iterator, Mapping

from .module import Module, _indent


class Sequential(Module):
    """``Sequential(m0, m1, ...)(x) == ...m1(m0(x))``; sub-modules are named ``"0"``, ``"1"``…
    (or by the keys of a single ``OrderedDict`` argument, as in PyTorch)."""

    def __init__(self, *modules: Module):
        super().__init__()
        if len(modules) == 1 and isinstance(modules[0], OrderedDict):
            for name, module in modules[0].items():
                _check_module(module, f"Sequential: entry {name!r}")
                self.add_module(name, module)
            return
        for i, module in enumerate(modules):
            _check_module(module, f"Sequential: argument {i}")
            self.add_module(str(i), module)

    def __getitem__(self, index: int | slice) -> "Module":
        """One module, or a ``Sequential`` of a slice of them that keeps their names (as in
        PyTorch: ``model[2:].state_dict()`` has keys ``"2.weight"``…)."""
        if isinstance(index, slice):
            part = Sequential()
            for name, module in list(self._modules.items())[index]:
                part.add_module(name, module)
            return part
        return list(self._modules.values())[_position(self, index)]

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __setitem__(self, index: int, module: Module) -> None:
        """Replace one module, keeping its name (``model[-1] = nn.Linear(...)``: a new
        head)."""
        _check_module(module, "Sequential")
        setattr(self, list(self._modules)[_position(self, index)], module)

    def __delitem__(self, index: int | slice) -> None:
        """Remove modules; the rest are renumbered ``"0"``, ``"1"``… as in PyTorch."""
        modules = list(self._modules.values())
        del modules[index if isinstance(index, slice) else _position(self, index)]
        _renumber(self, modules)

    def append(self, module: Module) -> "Sequential":
        _check_module(module, "Sequential.append")
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> "Sequential":
        for module in list(modules):
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> "Sequential":
        """Insert ``module`` before position ``index``; all are renumbered, as in PyTorch."""
        _check_module(module, "Sequential.insert")
        if not -len(self) <= index <= len(self):
            raise IndexError(f"Index out of range: {index}")
        modules = list(self._modules.values())
        modules.insert(index, module)
        _renumber(self, modules)
        return self

    def pop(self, index: int) -> Module:
        module = self[index]
        del self[index]
        return module

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class ModuleList(Module):
    """A list of modules, registered as children ``"0"``, ``"1"``…; index, iterate, append,
    extend and insert it like a list. It has no ``forward``: the parent decides how the
    modules are used (e.g. ``for layer in self.layers: x = layer(x)``)."""

    def __init__(self, modules: Iterable[Module] | None = None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def __getitem__(self, index: int | slice):
        modules = list(self._modules.values())
        if isinstance(index, slice):
            return ModuleList(modules[index])
        return modules[_position(self, index)]

    def __setitem__(self, index: int, module: Module) -> None:
        _check_module(module, "ModuleList")
        self.add_module(str(_position(self, index)), module)

    def __delitem__(self, index: int | slice) -> None:
        modules = list(self._modules.values())
        if isinstance(index, slice):
            del modules[index]
        else:
            del modules[_position(self, index)]
        _renumber(self, modules)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._modules.values())

    def __iadd__(self, modules: Iterable[Module]) -> "ModuleList":
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> "ModuleList":
        return ModuleList([*self, *other])

    def append(self, module: Module) -> "ModuleList":
        _check_module(module, "ModuleList.append")
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> "ModuleList":
        if isinstance(modules, Module) and not isinstance(modules, (ModuleList, Sequential)):
            raise TypeError("ModuleList.extend should be called with an iterable, but got "
                            f"{type(modules).__name__}")
        for module in list(modules):
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        _check_module(module, "ModuleList.insert")
        modules = list(self._modules.values())
        modules.insert(index, module)
        _renumber(self, modules)

    def _child_lines(self) -> list[str]:
        """Runs of identical children collapse to ``(0-2): 3 x Linear(...)``, as PyTorch."""
        runs: list[list] = []  # [first index, last index, repr]
        for i, module in enumerate(self._modules.values()):
            text = repr(module)
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        return [_indent(f"({first}): {text}" if first == last
                        else f"({first}-{last}): {last - first + 1} x {text}")
                for first, last, text in runs]

    def __repr__(self) -> str:
        if not self._modules:
            return "ModuleList()"
        return "ModuleList(\n  " + "\n  ".join(self._child_lines()) + "\n)"


class ModuleDict(Module):
    """An ordered dict of modules keyed by name, registered as children under their keys;
    use it like a dict. Like ``ModuleList`` it has no ``forward``."""

    def __init__(self, modules: Mapping[str, Module] | Iterable | None = None):
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        _check_module(module, f"ModuleDict[{key!r}]")
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        del self._modules[key]
        object.__delattr__(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(self._modules)

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()

    def pop(self, key: str) -> Module:
        module = self[key]
        del self[key]
        return module

    def clear(self) -> None:
        for key in list(self._modules):
            del self[key]

    def update(self, modules: Mapping[str, Module] | Iterable) -> None:
        """Add entries from a mapping (another ``ModuleDict`` too) or from ``(key, module)``
        pairs."""
        if isinstance(modules, (Mapping, ModuleDict)):
            for key, module in modules.items():
                self[key] = module
            return
        for j, item in enumerate(modules):
            if not isinstance(item, (tuple, list)) or len(item) != 2:
                raise ValueError(f"ModuleDict update sequence element #{j} should be a "
                                 "(key, module) pair")
            key, module = item
            self[key] = module


def _position(container: Module, index: int) -> int:
    """``index`` (negative ones count from the end) as a position in ``container``."""
    if not -len(container._modules) <= index < len(container._modules):
        raise IndexError(f"index {index} is out of range")
    return index % len(container._modules)


def _renumber(container: Module, modules: list) -> None:
    """Re-register ``modules`` as ``"0"``, ``"1"``… (PyTorch keeps names contiguous)."""
    for name in list(container._modules):
        delattr(container, name)
    for i, module in enumerate(modules):
        container.add_module(str(i), module)


def _check_module(module, where: str) -> None:
    if not isinstance(module, Module):
        raise TypeError(f"{where} is a {type(module).__name__}, not a Module")
