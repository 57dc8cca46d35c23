"""``RNNBase`` and ``RNNCellBase``: what ``nn.RNN``, ``nn.LSTM`` and ``nn.GRU`` (and their
cells) have in common, as in PyTorch.

The three layers differ only in what one layer does to one sequence in one direction (the
*recurrence*: Elman, LSTM or GRU) and in how many gate blocks their weights stack. Everything
else is the same code, here:

* constructor checks and attributes (``input_size``, ``hidden_size``, ``num_layers``,
  ``bias``, ``batch_first``, ``dropout``, ``bidirectional``, ``proj_size``, ``unroll``);
* the parameter layout and names: for layer ``k`` and direction ``d`` (suffix ``_l{k}``, plus
  ``_reverse`` for d = 1), in PyTorch's order::

      weight_ih_l{k}  (G*H, H_in_k)     G = gates per layer: 1 (RNN), 4 (LSTM), 3 (GRU)
      weight_hh_l{k}  (G*H, H_out)      H_out = proj_size if proj_size > 0 else H
      bias_ih_l{k}    (G*H,)            (not with bias=False)
      bias_hh_l{k}    (G*H,)
      weight_hr_l{k}  (H_out, H)        (LSTM with proj_size > 0 only)

  where ``H_in_0 = input_size`` and ``H_in_k = D*H_out`` above; all drawn from
  U(-1/sqrt(H), 1/sqrt(H));
* input validation, ``batch_first`` and unbatched input, the initial states (zeros when not
  given) and their validation;
* the loop over layers and directions: dropout between layers (training mode only), each
  direction's outputs concatenated as the next layer's input, the final states stacked in
  PyTorch's order (layer 0 forward, layer 0 reverse, layer 1 forward, ...);
* variable-length input (a ``PackedSequence``): the initial states taken to the packed
  (sorted) order and the final states back to the caller's, each sequence's own last state
  picked out (:meth:`RNNBase._forward_packed`); the driver runs on the packed rows;
* the public state hook (:meth:`RNNBase.register_state_hook`): every ``h_t`` in the forward
  pass and every ``∂L/∂h_t`` in the backward pass, with one callback shape (``bptt`` uses it).

The time loop itself is ``recurrence.py``'s, for every cell. A subclass says how many gates it
has (``_gates``), what its state is (``_state_names``: ``("h0",)`` or ``("h0", "c0")``) and
which step equations to run (:meth:`RNNBase._cell`, from ``cells.py``).
"""
from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, TypeVar

from .. import backend
from ..errors import ShapeError
from ..tensor import RemovableHandle, Tensor
from . import functional as F, recurrence
from .checks import check_positive_int, check_probability, is_int
from .linear import uniform_parameter
from .module import Module, check_input_dtype, warn_dropout_without_layers
from .utils.rnn import PackedSequence


class StateEvent(NamedTuple):
    """What a state hook receives (see :meth:`RNNBase.register_state_hook`)."""
    call: int      #: which forward call of the layer (0, 1, …) the step belongs to
    row: int       #: layer and direction, in PyTorch's ``h_n`` order: ``layer * D + direction``
    kind: str      #: ``"state"`` (forward pass) or ``"grad"`` (backward pass)
    t: int         #: the step, in input time order (0 … L-1), for either direction
    value: Any     #: ``h_t`` or ``∂L/∂h_t``, a Tensor ``(N, H_out)``


StateHook = Callable[[StateEvent], None]

#: A layer's input: a Tensor gives a Tensor output, a PackedSequence a PackedSequence.
SequenceInput = TypeVar("SequenceInput", Tensor, PackedSequence)


def _spread(rows: Tensor, batch: int, unsorted) -> Tensor:
    """The ``n`` running rows of a packed step as ``(batch, ·)`` in the caller's order (the
    sequences not running get zeros)."""
    n = rows.shape[0]
    if n < batch:
        rows = Tensor.cat([rows, Tensor._wrap(rows.xp.zeros((batch - n,) + rows.shape[1:],
                                                             dtype=rows.dtype))], axis=0)
    return rows if unsorted is None else rows[unsorted]


class RNNBase(Module):
    """Multi-layer, optionally bidirectional recurrent layer: the orchestration shared by
    :class:`~tinygrad_rnn.nn.RNN`, :class:`~tinygrad_rnn.nn.LSTM` and
    :class:`~tinygrad_rnn.nn.GRU` (see the module docstring). Not used directly."""

    #: The layer's name in error messages (``"RNN"``, ``"LSTM"``, ``"GRU"``).
    _mode = "RNN"
    #: Gate blocks stacked in each weight matrix (1 Elman, 4 LSTM, 3 GRU).
    _gates = 1
    #: The recurrent state, as the user passes it: ``("h0",)`` or ``("h0", "c0")`` (LSTM).
    _state_names: tuple[str, ...] = ("h0",)

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, proj_size: int = 0, unroll: bool = False,
                 dtype=None):
        super().__init__()
        owner = self._mode
        check_positive_int(owner, "input_size", input_size)
        check_positive_int(owner, "hidden_size", hidden_size)
        if not is_int(num_layers) or num_layers < 1:
            raise ValueError(f"{owner}: num_layers must be an integer >= 1, got {num_layers!r}")
        check_probability(dropout)
        if not is_int(proj_size) or proj_size < 0:
            raise ValueError(f"{owner}: proj_size should be a positive integer or zero to "
                             f"disable projections, got {proj_size!r}")
        if proj_size >= hidden_size:
            raise ValueError(f"{owner}: proj_size has to be smaller than hidden_size, got "
                             f"proj_size={proj_size} and hidden_size={hidden_size}")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        self.bidirectional, self.proj_size, self.unroll = bidirectional, int(proj_size), unroll
        self._state_hooks: list = []
        self._forward_calls = 0
        self._init_parameters(dtype)
        warn_dropout_without_layers(dropout, num_layers)

    @property
    def num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def output_size(self) -> int:
        """The size of each direction's hidden state ``h_t``: ``proj_size`` if set, else
        ``hidden_size``."""
        return self.proj_size if self.proj_size > 0 else self.hidden_size

    # -------------------------------------------------------------------------- parameters
    def _init_parameters(self, dtype) -> None:
        """Create the weights in PyTorch's order (layer, direction, w_ih, w_hh, b_ih, b_hh,
        w_hr), each drawn from U(-1/sqrt(H), 1/sqrt(H))."""
        H, bound = self.hidden_size, 1.0 / math.sqrt(self.hidden_size)
        G, H_out = self._gates * H, self.output_size
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else H_out * self.num_directions
            for direction in range(self.num_directions):
                sfx = self._suffix(layer, direction)
                setattr(self, f"weight_ih{sfx}", uniform_parameter(G, layer_input, bound=bound,
                                                                  dtype=dtype))
                setattr(self, f"weight_hh{sfx}", uniform_parameter(G, H_out, bound=bound,
                                                                  dtype=dtype))
                if self.bias:
                    setattr(self, f"bias_ih{sfx}", uniform_parameter(G, bound=bound, dtype=dtype))
                    setattr(self, f"bias_hh{sfx}", uniform_parameter(G, bound=bound, dtype=dtype))
                if self.proj_size > 0:
                    setattr(self, f"weight_hr{sfx}", uniform_parameter(H_out, H, bound=bound,
                                                                      dtype=dtype))

    @staticmethod
    def _suffix(layer: int, direction: int) -> str:
        return f"_l{layer}" + ("_reverse" if direction == 1 else "")

    def layer_weights(self, layer: int, direction: int) -> tuple:
        """``(weight_ih, weight_hh, bias_ih, bias_hh)`` of one layer and direction (biases
        None when ``bias=False``), plus ``weight_hr`` when ``proj_size > 0``."""
        sfx = self._suffix(layer, direction)
        bias = (getattr(self, f"bias_ih{sfx}"), getattr(self, f"bias_hh{sfx}")) if self.bias \
            else (None, None)
        weights = (getattr(self, f"weight_ih{sfx}"), getattr(self, f"weight_hh{sfx}")) + bias
        if self.proj_size > 0:
            weights += (getattr(self, f"weight_hr{sfx}"),)
        return weights

    @property
    def all_weights(self) -> list:
        """The parameters of each layer and direction, in PyTorch's order:
        ``[[weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0], ...]`` (no biases when
        ``bias=False``; ``weight_hr`` last with ``proj_size``)."""
        return [[w for w in self.layer_weights(layer, direction) if w is not None]
                for layer in range(self.num_layers) for direction in range(self.num_directions)]

    def flatten_parameters(self) -> None:
        """Nothing to do: PyTorch packs the weights into one cuDNN buffer here. Kept so that
        PyTorch programs that call it run unchanged."""

    # ----------------------------------------------------------------------------- forward
    def forward(self, input: Tensor | PackedSequence, hx=None):
        """Run the whole sequence; returns ``(output, h_n)`` (``(output, (h_n, c_n))`` for
        LSTM). Shapes are in the subclass's docstring; a :class:`PackedSequence` input gives a
        PackedSequence output (:meth:`_forward_packed`)."""
        if isinstance(input, PackedSequence):
            return self._forward_packed(input, hx)
        x, state, unbatched = self._canonical_inputs(input, hx)
        output, final_states = self._run_layers(x, state)
        if self.batch_first and not unbatched:  # unbatched input is (L, H_in) either way
            output = output.transpose(0, 1)
        if unbatched:
            output = output.squeeze(1)
            final_states = [s.squeeze(1) for s in final_states]
        return output, (final_states[0] if len(final_states) == 1 else tuple(final_states))

    def _forward_packed(self, input: PackedSequence, hx):
        """Variable-length sequences, as PyTorch: ``input.data`` ``(Σ lengths, H_in)`` in the
        packed layout (``nn.utils.rnn``) → ``(PackedSequence, h_n)``, the output rows
        ``(Σ lengths, D*H_out)`` with ``input``'s batch sizes and indices.

        Every layer and direction runs on the packed layout: step t computes only its
        ``batch_sizes[t]`` rows. ``h_n`` (and ``c_n``) hold each sequence's *own* final state:
        forward, the state after its last real step; reverse, the state after step 0, the
        backward direction having started at the sequence's last real step. ``hx`` and
        ``h_n`` are in the caller's batch order (``sorted_indices`` takes ``hx`` to the
        packed order, ``unsorted_indices`` brings ``h_n`` back).
        """
        data = self._check_packed(input)
        steps = recurrence.Steps(backend.to_host(input.batch_sizes.data))
        # _canonical_state reads a batch's size, backend and dtype: an empty stand-in.
        stand_in = Tensor._wrap(data.xp.empty((0, steps.batch, 0), dtype=data.dtype))
        state = self._canonical_state(hx, stand_in, False)
        if input.sorted_indices is not None and hx is not None:  # zeros: any order is theirs
            state = tuple(s[:, input.sorted_indices] for s in state)
        unsorted = None if input.unsorted_indices is None else \
            backend.to_host(input.unsorted_indices.data)
        output, final_states = self._run_layers(data, state, steps, unsorted)
        finals = final_states[0] if len(final_states) == 1 else tuple(final_states)
        return input._replace(data=output), finals

    def _run_layers(self, x: Tensor, state: tuple, steps=None, unsorted=None) -> tuple:
        """The loop over layers and directions on ``x`` ``(L, N, H_in)`` or packed rows
        (with their ``steps``, and ``unsorted``: the host index that takes the packed batch
        order to the caller's, None when they are the same); returns the last layer's output
        in the same layout and the final states, one ``(D*num_layers, N, ·)`` tensor per
        state component (in the caller's order)."""
        call, self._forward_calls = self._forward_calls, self._forward_calls + 1
        layer_input, finals = x, []
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                layer_input = F.dropout(layer_input, self.dropout, training=True)
            outputs = []
            for direction in range(self.num_directions):
                hs, final = self._run_direction(layer_input, state, layer, direction, call,
                                                steps, unsorted)
                outputs.append(hs)
                finals.append(final)
            layer_input = outputs[0] if len(outputs) == 1 else Tensor.cat(outputs, axis=-1)
        # The output and the final states are siblings, as in PyTorch: a hook or retain_grad
        # on the output sees the output's gradient only. With one direction the output would
        # be the very tensor h_n was sliced from, so it is returned as a view of it.
        output = layer_input.view(layer_input.shape) if self.num_directions == 1 else layer_input
        # One stacked (D*num_layers, N, ·) tensor per state component (h_n, and c_n for LSTM).
        return output, [Tensor.stack([f[k] for f in finals], axis=0) for k in range(len(state))]

    def _run_direction(self, x: Tensor, state: tuple, layer: int, direction: int,
                       call: int = 0, steps=None, unsorted=None) -> tuple:
        """Run one layer in one direction from its slice of the initial state(s).

        Returns ``(hs, final)``: all hidden states in ``x``'s layout (``(L, N, H_out)`` in
        time order, or packed rows) and the direction's final state(s) as a tuple (``(h_T,)``,
        or ``(h_T, c_T)`` for LSTM), each ``(N, ·)``."""
        row = layer * self.num_directions + direction
        start = tuple(s[row] for s in state)
        w_ih, w_hh, b_ih, b_hh, *extra = self.layer_weights(layer, direction)
        reverse = direction == 1
        states = recurrence.run(self._cell(*extra), x, start, (w_ih, w_hh, b_ih, b_hh),
                                reverse=reverse, unroll=self.unroll,
                                watch=self._watch(call, row, steps, unsorted), steps=steps)
        last: Any
        if steps is None:
            last = 0 if reverse else -1
        elif reverse and unsorted is None:   # packed, in order: the rows of step 0
            last = slice(0, steps.batch)
        else:   # each sequence's own last row, picked in the caller's order: one gather
            last = steps.last_rows(reverse)
            last = last if unsorted is None else last[unsorted]
        return states[0], tuple(s[last] for s in states)

    def _cell(self, *extra_weights: Tensor) -> recurrence.Cell:
        """The step equations of this layer's cell (``cells.py``), for one run."""
        raise NotImplementedError(f"{type(self).__name__} must define _cell()")

    # -------------------------------------------------------------------------- state hook
    def register_state_hook(self, hook: StateHook) -> RemovableHandle:
        """Watch every hidden state and its gradient: ``hook(event)`` is called with a
        :class:`StateEvent` ``(call, row, kind, t, value)``

        * in the forward pass with ``kind="state"`` and ``value`` = ``h_t`` ``(N, H_out)``;
        * in the backward pass with ``kind="grad"`` and ``value`` = ``∂L/∂h_t`` ``(N, H_out)``,
          the total gradient reaching ``h_t`` (from the output at t and from the steps after
          it), in the order BPTT computes them: t = L-1 … 0 (0 … L-1 in a reverse row).

        ``call`` numbers the layer's forward calls (a backward pass reports to the hooks
        registered when its forward ran, under that forward's number); ``row`` is the layer
        and direction in PyTorch's ``h_n`` order; ``t`` the step in input time order, also for
        the reverse direction (``batch_first`` and unbatched input alike: unbatched is N = 1).
        Both implementations call it; with ``unroll=True`` a state's ``value`` is the graph
        tensor itself. For a ``PackedSequence`` input, ``value`` is ``(N, H_out)`` in the
        caller's batch order with zeros for the sequences not running at step t (a new tensor
        built from the running rows). Values are only valid during the call: copy what you
        keep. Returns a handle whose ``remove()`` unregisters the hook. ``bptt.trace`` is
        built on it.
        """
        if not callable(hook):
            raise TypeError(f"{self._mode}: register_state_hook expects a callable, got "
                            f"{type(hook).__name__}")
        self._state_hooks.append(hook)
        return RemovableHandle(self._state_hooks, hook)

    def _watch(self, call: int, row: int, steps=None,
               unsorted=None) -> recurrence.Watch | None:
        """The driver's callback for one row, or None when nobody watches (no cost then).
        Packed input: the driver reports the running rows of step t, in the packed order;
        hooks get ``(N, H_out)`` in the caller's order, zeros for the other sequences."""
        if not self._state_hooks:
            return None
        hooks = list(self._state_hooks)
        batch = None if steps is None else steps.batch

        def watch(kind: str, t: int, value: Tensor) -> None:
            if batch is not None:
                value = _spread(value, batch, unsorted)
            event = StateEvent(call, row, kind, t, value)
            for hook in hooks:
                hook(event)
        return watch

    # ---------------------------------------------------------------------- input checking
    def _check_packed(self, input: PackedSequence) -> Tensor:
        """The packed rows ``input.data`` ``(Σ lengths, H_in)``, checked as an input."""
        owner, data = self._mode, input.data
        if data.ndim != 2:
            raise ShapeError(f"{owner}: expected a PackedSequence whose data is 2-D "
                             f"(sum of lengths, H_in), got shape {data.shape}")
        self._check_features(data)
        return data

    def _check_features(self, input: Tensor) -> None:
        """The last axis of an input: floating point, our weights' dtype, ``input_size``."""
        owner = self._mode
        if not backend.is_floating(input.dtype):
            raise TypeError(f"{owner}: expected a floating point input, got dtype "
                            f"{input.dtype}; convert it with .float()")
        check_input_dtype(owner, input, self.layer_weights(0, 0)[0])
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{owner}: input.size(-1) must be equal to input_size. Expected "
                             f"{self.input_size}, got {input.shape[-1]}")

    def _canonical_inputs(self, input, hx) -> tuple[Tensor, tuple, bool]:
        """Validate and bring input to ``(L, N, H_in)`` and the state(s) to
        ``(D*layers, N, ·)``; returns ``(x, state tuple, unbatched)``."""
        owner = self._mode
        if not isinstance(input, Tensor):
            raise TypeError(f"{owner}: expected input to be a Tensor, got "
                            f"{type(input).__name__}")
        if input.ndim not in (2, 3):
            raise ShapeError(f"{owner}: Expected input to be 2D (L, H_in) or 3D "
                             f"({'N, L' if self.batch_first else 'L, N'}, H_in), got "
                             f"{input.ndim}D tensor of shape {input.shape} instead")
        self._check_features(input)
        length_axis = 1 if input.ndim == 3 and self.batch_first else 0
        if input.shape[length_axis] == 0:
            raise ShapeError(f"{owner}: expected a sequence of length >= 1, got input of "
                             f"shape {input.shape}")
        if input.ndim == 3 and input.shape[1 - length_axis] == 0:
            raise ShapeError(f"{owner}: expected a batch of at least one sequence, got input "
                             f"of shape {input.shape}")
        unbatched = input.ndim == 2
        x = input.unsqueeze(1) if unbatched else \
            (input.transpose(0, 1) if self.batch_first else input)
        return x, self._canonical_state(hx, x, unbatched), unbatched

    def _canonical_state(self, hx, x: Tensor, unbatched: bool) -> tuple:
        """The initial state(s) as a tuple of ``(D*layers, N, ·)`` tensors. The default
        (one ``h0``) suits RNN and GRU; LSTM overrides it for ``(h0, c0)``."""
        return (self._canonical_h0(hx, x, unbatched, "h0", self.output_size, "hidden"),)

    def _canonical_h0(self, h0, x: Tensor, unbatched: bool, name: str, size: int,
                      label: str) -> Tensor:
        """Check one initial state ``name`` (``h0``/``c0``) of last dimension ``size``, or
        make zeros when it is None; ``label`` names it in the shape error as PyTorch does
        (``hidden`` for RNN/GRU, ``hidden[0]``/``hidden[1]`` for LSTM)."""
        owner = self._mode
        layers = self.num_layers * self.num_directions
        batch = x.shape[1]
        if h0 is None:
            return Tensor._wrap(x.xp.zeros((layers, batch, size), dtype=x.dtype))
        if not isinstance(h0, Tensor):
            raise TypeError(f"{owner}: expected {name} to be a Tensor, got "
                            f"{type(h0).__name__}")
        expected_ndim = 2 if unbatched else 3
        if h0.ndim != expected_ndim:
            kind = "unbatched 2-D" if unbatched else "batched 3-D"
            raise ShapeError(f"{owner}: for {kind} input, {name} should be {expected_ndim}-D "
                             f"but got {h0.ndim}-D tensor of shape {h0.shape}")
        if unbatched:
            h0 = h0.unsqueeze(1)
        expected = (layers, batch, size)
        if h0.shape != expected:
            shown = expected if not unbatched else (layers, size)
            got = h0.shape if not unbatched else (h0.shape[0], h0.shape[2])
            raise ShapeError(f"{owner}: Expected {label} size {shown}, got {got}")
        if h0.dtype != x.dtype:
            raise TypeError(f"{owner}: {name} dtype {h0.dtype} does not match input dtype "
                            f"{x.dtype}")
        return h0

    # -------------------------------------------------------------------------------- repr
    def _extra_options(self) -> str:
        """Options of the subclass shown after ``num_layers`` in the repr (RNN: the
        nonlinearity)."""
        return ""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.proj_size:
            s += f", proj_size={self.proj_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        s += self._extra_options()
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


class RNNCellBase(Module):
    """One time step of a recurrent layer: the parameters and the input and state checks
    shared by :class:`~tinygrad_rnn.nn.RNNCell`, :class:`~tinygrad_rnn.nn.LSTMCell` and
    :class:`~tinygrad_rnn.nn.GRUCell`.

    Parameters (PyTorch's names): ``weight_ih`` ``(G*H, H_in)``, ``weight_hh`` ``(G*H, H)``,
    ``bias_ih``, ``bias_hh`` ``(G*H,)`` (None with ``bias=False``), drawn from
    U(-1/sqrt(H), 1/sqrt(H)); G = 1 (RNNCell), 4 (LSTMCell), 3 (GRUCell).
    """

    _mode = "RNNCell"
    _gates = 1
    bias_ih: Tensor | None
    bias_hh: Tensor | None

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype=None):
        super().__init__()
        check_positive_int(self._mode, "input_size", input_size)
        check_positive_int(self._mode, "hidden_size", hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        G, bound = self._gates * hidden_size, 1.0 / math.sqrt(hidden_size)
        self.weight_ih = uniform_parameter(G, input_size, bound=bound, dtype=dtype)
        self.weight_hh = uniform_parameter(G, hidden_size, bound=bound, dtype=dtype)
        for name in ("bias_ih", "bias_hh"):
            self.register_parameter(
                name, uniform_parameter(G, bound=bound, dtype=dtype) if bias else None)

    def _canonical_input(self, input) -> tuple[Tensor, bool]:
        """Validate ``input`` ``(N, H_in)`` or unbatched ``(H_in,)``; returns ``(x (N, H_in),
        unbatched)``."""
        owner = self._mode
        if not isinstance(input, Tensor) or input.ndim not in (1, 2):
            shape = getattr(input, "shape", type(input).__name__)
            raise ShapeError(f"{owner}: Expected input to be 1D or 2D, got {shape}")
        if input.shape[-1] != self.input_size:
            raise ShapeError(f"{owner}: input has inconsistent input_size: got "
                             f"{input.shape[-1]} expected {self.input_size}")
        check_input_dtype(owner, input, self.weight_ih)
        unbatched = input.ndim == 1
        return (input.unsqueeze(0) if unbatched else input), unbatched

    def _canonical_state(self, hx, x: Tensor, unbatched: bool, name: str = "hx") -> Tensor:
        """The state ``(N, H)`` (zeros if None), checked against the batch of ``x``."""
        if hx is None:
            return Tensor._wrap(x.xp.zeros((x.shape[0], self.hidden_size), dtype=x.dtype))
        if not isinstance(hx, Tensor):
            raise TypeError(f"{self._mode}: expected {name} to be a Tensor, got "
                            f"{type(hx).__name__}")
        # Checked as given (not after unsqueezing), so the message shows the user's shapes.
        expected = (self.hidden_size,) if unbatched else (x.shape[0], self.hidden_size)
        if hx.shape != expected:
            raise ShapeError(f"{self._mode}: Expected hidden size {expected}, got {hx.shape}")
        h = hx.unsqueeze(0) if unbatched else hx
        if h.dtype != x.dtype:
            raise TypeError(f"{self._mode}: {name} dtype {h.dtype} does not match input dtype "
                            f"{x.dtype}")
        return h

    def _step(self, x: Tensor, states: tuple) -> tuple:
        """One step of the layer's equations (``cells.py``) on ``x`` ``(N, H_in)`` and the
        states ``(N, H)``."""
        cell = self._cell()
        x_share, h_share = x @ self.weight_ih.T, states[0] @ self.weight_hh.T
        if self.bias_ih is not None and self.bias_hh is not None:
            if cell.hidden_bias_apart:
                x_share, h_share = x_share + self.bias_ih, h_share + self.bias_hh
            else:
                x_share = x_share + (self.bias_ih + self.bias_hh)
        return cell.step(x_share, h_share, states)

    def _cell(self) -> recurrence.Cell:
        raise NotImplementedError(f"{type(self).__name__} must define _cell()")

    def _extra_options(self) -> str:
        return ""

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        return s + self._extra_options()
