"""``nn.Sequential``: modules applied one after the other."""
from __future__ import annotations

from .module import Module


class Sequential(Module):
    """``Sequential(m0, m1, ...)(x) == ...m1(m0(x))``; sub-modules are named ``"0"``, ``"1"``…"""

    def __init__(self, *modules: Module):
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: argument {i} is a {type(module).__name__}, "
                                "not a Module")
            setattr(self, str(i), module)

    def __getitem__(self, index: int | slice) -> "Module":
        """One module, or a ``Sequential`` of a slice of them (as in PyTorch)."""
        modules = list(self._modules.values())
        return Sequential(*modules[index]) if isinstance(index, slice) else modules[index]

    def __len__(self) -> int:
        return len(self._modules)

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x
