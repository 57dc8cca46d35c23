"""``nn.RNN`` and ``nn.RNNCell``: Elman recurrent layers with PyTorch's exact semantics.

Same constructor arguments, parameter names (``weight_ih_l{k}``, ``weight_hh_l{k}``,
``bias_ih_l{k}``, ``bias_hh_l{k}``, ``_reverse`` for the backward direction), initialisation
U(-1/sqrt(H), 1/sqrt(H)), shapes and defaults as ``torch.nn.RNN``, so a PyTorch state dict loads
as is. The recurrence itself lives in ``recurrence.py``: ``unroll=False`` (default) uses the
fused layer with hand-written BPTT, ``unroll=True`` the per-time-step autograd graph.
"""
from __future__ import annotations

import math
import numbers

from .. import backend
from ..tensor import Tensor
from . import functional as F
from .linear import uniform_parameter
from .module import Module
from .recurrence import NONLINEARITIES, elman_fused, elman_unrolled


def _check_positive_int(owner: str, name: str, value) -> None:
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value <= 0:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")


def _check_nonlinearity(owner: str, nonlinearity: str) -> None:
    if nonlinearity not in NONLINEARITIES:
        raise ValueError(f"{owner}: unknown nonlinearity {nonlinearity!r}; expected 'tanh' or "
                         "'relu'")


class RNN(Module):
    r"""Multi-layer Elman RNN: ``h_t = f(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)``.

    Args (as ``torch.nn.RNN``): ``input_size``, ``hidden_size``, ``num_layers=1``,
    ``nonlinearity='tanh'`` (or ``'relu'``), ``bias=True``, ``batch_first=False``,
    ``dropout=0.0`` (between layers, training mode only), ``bidirectional=False``; plus
    ``unroll=False`` (True: per-step autograd graph instead of the fused BPTT node).

    Shapes, with D = 2 if bidirectional else 1:
        input: ``(L, N, H_in)``, ``(N, L, H_in)`` if ``batch_first``, or unbatched ``(L, H_in)``
        h0:    ``(D*num_layers, N, H_out)`` (``(D*num_layers, H_out)`` unbatched); zeros if None
        output: ``(L, N, D*H_out)`` (batch_first: ``(N, L, D*H_out)``; unbatched ``(L, D*H_out)``)
        h_n:   ``(D*num_layers, N, H_out)`` (unbatched ``(D*num_layers, H_out)``)
    """

    #: The active ``bptt.trace`` recording this layer (set only by ``bptt.trace``).
    _tracer = None

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", bias: bool = True, batch_first: bool = False,
                 dropout: float = 0.0, bidirectional: bool = False, unroll: bool = False,
                 dtype=None):
        super().__init__()
        _check_positive_int("RNN", "input_size", input_size)
        _check_positive_int("RNN", "hidden_size", hidden_size)
        if not isinstance(num_layers, numbers.Integral) or num_layers < 1:
            raise ValueError(f"RNN: num_layers must be an integer >= 1, got {num_layers!r}")
        _check_nonlinearity("RNN", nonlinearity)
        if isinstance(dropout, bool) or not isinstance(dropout, numbers.Real) \
                or not 0.0 <= dropout <= 1.0:
            raise ValueError("dropout should be a number in range [0, 1] representing the "
                             f"probability of an element being zeroed, got {dropout!r}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.nonlinearity, self.bias, self.batch_first = nonlinearity, bias, batch_first
        self.dropout, self.bidirectional, self.unroll = float(dropout), bidirectional, unroll
        self._init_parameters(dtype)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    def _init_parameters(self, dtype) -> None:
        """Create the weights in PyTorch's order (layer, direction, w_ih, w_hh, b_ih, b_hh),
        each drawn from U(-1/sqrt(H), 1/sqrt(H))."""
        H, bound = self.hidden_size, 1.0 / math.sqrt(self.hidden_size)
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else H * self.num_directions
            for direction in range(self.num_directions):
                sfx = self._suffix(layer, direction)
                setattr(self, f"weight_ih{sfx}", uniform_parameter(H, layer_input, bound=bound,
                                                                  dtype=dtype))
                setattr(self, f"weight_hh{sfx}", uniform_parameter(H, H, bound=bound,
                                                                  dtype=dtype))
                if self.bias:
                    setattr(self, f"bias_ih{sfx}", uniform_parameter(H, bound=bound, dtype=dtype))
                    setattr(self, f"bias_hh{sfx}", uniform_parameter(H, bound=bound, dtype=dtype))

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    def layer_weights(self, layer: int, direction: int) -> tuple:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one layer and direction (biases
        None when ``bias=False``)."""
        sfx = self._suffix(layer, direction)
        bias = (getattr(self, f"bias_ih{sfx}"), getattr(self, f"bias_hh{sfx}")) if self.bias \
            else (None, None)
        return (getattr(self, f"weight_ih{sfx}"), getattr(self, f"weight_hh{sfx}")) + bias

    # ----------------------------------------------------------------------------- forward
    def forward(self, input: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the whole sequence; returns ``(output, h_n)`` (shapes in the class docstring)."""
        x, h0, unbatched = self._canonical_inputs(input, h0)
        layer_input, final_states = x, []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
            outputs = []
            for direction in range(self.num_directions):
                states = self._run_direction(layer_input, h0, layer, direction)
                outputs.append(states)
                final_states.append(states[0] if direction == 1 else states[-1])
            layer_input = outputs[0] if len(outputs) == 1 else Tensor.cat(outputs, axis=2)
        output, h_n = layer_input, Tensor.stack(final_states, axis=0)
        if self.batch_first and not unbatched:  # unbatched input is (L, H_in) either way
            output = output.transpose(0, 1)
        if unbatched:
            output, h_n = output.squeeze(1), h_n.squeeze(1)
        return output, h_n

    def _run_direction(self, x: Tensor, h0: Tensor, layer: int, direction: int) -> Tensor:
        """All hidden states ``(L, N, H)`` of one layer and direction."""
        index = layer * self.num_directions + direction
        start = h0[index]
        recurrence = elman_unrolled if self.unroll else elman_fused
        # Inside ``with bptt.trace(self)`` the tracer watches every h_t and its gradient.
        watch = {} if self._tracer is None else self._tracer.callbacks(index, self.unroll)
        states = recurrence(x, start, *self.layer_weights(layer, direction),
                            nonlinearity=self.nonlinearity, reverse=direction == 1, **watch)
        if self._tracer is not None:
            self._tracer.record_states(index, states)
        return states

    def _canonical_inputs(self, input, h0) -> tuple[Tensor, Tensor, bool]:
        """Validate and bring input to ``(L, N, H_in)`` and h0 to ``(D*layers, N, H)``."""
        if not isinstance(input, Tensor):
            raise TypeError(f"RNN: expected input to be a Tensor, got {type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ValueError(f"RNN: Expected input to be 2D (L, H_in) or 3D "
                             f"({'N, L' if self.batch_first else 'L, N'}, H_in), got "
                             f"{input.ndim}D tensor of shape {input.shape} instead")
        if not backend.is_floating(input.dtype):
            raise TypeError(f"RNN: expected a floating point input, got dtype {input.dtype}; "
                            "convert it with .float()")
        weight = self.weight_ih_l0
        if input.dtype != weight.dtype:
            raise TypeError(f"RNN: input dtype {input.dtype} does not match the parameters' "
                            f"dtype {weight.dtype}; convert the input (.float()/.double()) or "
                            "the model (.float()/.double())")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"RNN: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {input.shape[-1]}")
        length_axis = 1 if input.ndim == 3 and self.batch_first else 0
        if input.shape[length_axis] == 0:
            raise ValueError(f"RNN: expected a sequence of length >= 1, got input of shape "
                             f"{input.shape}")
        if input.ndim == 3 and input.shape[1 - length_axis] == 0:
            raise ValueError(f"RNN: expected a batch of at least one sequence, got input of "
                             f"shape {input.shape}")
        unbatched = input.ndim == 2
        x = input.unsqueeze(1) if unbatched else \
            (input.transpose(0, 1) if self.batch_first else input)
        h0 = self._canonical_h0(h0, x, unbatched)
        return x, h0, unbatched

    def _canonical_h0(self, h0, x: Tensor, unbatched: bool) -> Tensor:
        layers = self.num_layers * self.num_directions
        batch = x.shape[1]
        if h0 is None:
            return Tensor._wrap(x.xp.zeros((layers, batch, self.hidden_size), dtype=x.dtype))
        if not isinstance(h0, Tensor):
            raise TypeError(f"RNN: expected h0 to be a Tensor, got {type(h0).__name__}")
        expected_ndim = 2 if unbatched else 3
        if h0.ndim != expected_ndim:
            kind = "unbatched 2-D" if unbatched else "batched 3-D"
            raise ValueError(f"RNN: for {kind} input, h0 should be {expected_ndim}-D but got "
                             f"{h0.ndim}-D tensor of shape {h0.shape}")
        if unbatched:
            h0 = h0.unsqueeze(1)
        expected = (layers, batch, self.hidden_size)
        if h0.shape != expected:
            shown = expected if not unbatched else (layers, self.hidden_size)
            got = h0.shape if not unbatched else (h0.shape[0], h0.shape[2])
            raise ValueError(f"RNN: Expected hidden size {shown}, got {got}")
        if h0.dtype != x.dtype:
            raise TypeError(f"RNN: h0 dtype {h0.dtype} does not match input dtype {x.dtype}")
        return h0

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        if not self.bias:
            s += ", bias=False"
        if self.batch_first:
            s += ", batch_first=True"
        if self.dropout:
            s += f", dropout={self.dropout}"
        if self.bidirectional:
            s += ", bidirectional=True"
        if self.unroll:
            s += ", unroll=True"
        return s


class RNNCell(Module):
    """One Elman step: ``h' = f(x W_ihᵀ + b_ih + h W_hhᵀ + b_hh)``, as ``torch.nn.RNNCell``.

    input ``(N, H_in)`` or ``(H_in,)``; hx ``(N, H)`` or ``(H,)`` (zeros if None) → h' of the
    same batch layout. Parameters: ``weight_ih`` ``(H, H_in)``, ``weight_hh`` ``(H, H)``,
    ``bias_ih``, ``bias_hh`` ``(H,)``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True,
                 nonlinearity: str = "tanh", dtype=None):
        super().__init__()
        _check_positive_int("RNNCell", "input_size", input_size)
        _check_positive_int("RNNCell", "hidden_size", hidden_size)
        _check_nonlinearity("RNNCell", nonlinearity)
        self.input_size, self.hidden_size = input_size, hidden_size
        self.bias, self.nonlinearity = bias, nonlinearity
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = uniform_parameter(hidden_size, input_size, bound=bound, dtype=dtype)
        self.weight_hh = uniform_parameter(hidden_size, hidden_size, bound=bound, dtype=dtype)
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(
                name, uniform_parameter(hidden_size, bound=bound, dtype=dtype) if bias else None)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        if not isinstance(input, Tensor) or input.ndim not in (1, 2):
            shape = getattr(input, "shape", type(input).__name__)
            raise ValueError(f"RNNCell: Expected input to be 1D or 2D, got {shape}")
        if input.shape[-1] != self.input_size:
            raise ValueError(f"RNNCell: input has inconsistent input_size: got "
                             f"{input.shape[-1]} expected {self.input_size}")
        if input.dtype != self.weight_ih.dtype:
            raise TypeError(f"RNNCell: input dtype {input.dtype} does not match the parameters' "
                            f"dtype {self.weight_ih.dtype}; convert the input (.float()/.double()) "
                            "or the model (.float()/.double())")
        unbatched = input.ndim == 1
        x = input.unsqueeze(0) if unbatched else input
        if hx is None:
            h = Tensor._wrap(x.xp.zeros((x.shape[0], self.hidden_size), dtype=x.dtype))
        else:
            h = hx.unsqueeze(0) if unbatched else hx
            if h.shape != (x.shape[0], self.hidden_size):
                raise ValueError(f"RNNCell: Expected hidden size "
                                 f"{(x.shape[0], self.hidden_size)}, got {h.shape}")
        a = x @ self.weight_ih.T + h @ self.weight_hh.T
        if self.bias:
            a = a + self.bias_ih + self.bias_hh
        out = a.tanh() if self.nonlinearity == "tanh" else a.relu()
        return out.squeeze(0) if unbatched else out

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if self.nonlinearity != "tanh":
            s += f", nonlinearity={self.nonlinearity!r}"
        return s
