r"""One time step of a recurrent layer as a map ``s_t = F(s_{t-1}, x_t; θ)``, with its exact
Jacobians: the machinery under RTRL, UORO (``online.py``) and Lyapunov spectra
(``lyapunov.py``).

The **state** ``s`` is everything a stacked, unidirectional ``nn.RNN``, ``nn.LSTM`` or
``nn.GRU`` carries from one step to the next, as one vector per sample, layer after layer::

    s = [h¹, h², …, h^L]                    RNN, GRU   (S = L·H)
    s = [h¹, c¹, h², c², …, h^L, c^L]       LSTM       (S = 2·L·H)

and ``θ`` is the layer's parameters, flattened and joined in ``named_parameters()`` order
(``weight_ih_l0, weight_hh_l0, bias_ih_l0, bias_hh_l0, weight_ih_l1, …``; P numbers). A step
yields, per sample, the two Jacobians every forward-in-time method needs::

    J_t = ∂s_t/∂s_{t-1}    (S, S)       D_t = ∂s_t/∂θ  (S, P)  (θ's effect at step t alone)

**How they are computed.** In all three cells the parameters enter only through two affine
maps per layer, the input's and the state's share of the gate pre-activations::

    a_ih = u W_ihᵀ + b_ih,      a_hh = h_{t-1} W_hhᵀ + b_hh          (G·H each)

(``u`` is ``x_t`` for layer 1 and the new ``h_t`` of the layer below otherwise), followed by
a parameter-free update ``s'_l = cell(a_ih, a_hh, h_{t-1}, c_{t-1})``: the ``step`` of
:class:`~tinygrad_rnn.nn.cells.ElmanEquations`, ``LSTMEquations`` or ``GRUEquations``, the
same equations the layers run. The Jacobian of that small nonlinear part is taken
*exactly* by reverse mode: the sample is copied S_l times along the batch and one backward
pass seeded with the identity returns every row of ``∂s'_l/∂(a_ih, a_hh, h_{t-1}, c_{t-1})``
at once (samples do not interact, so the rows stay apart). Reverse mode is used instead of
hand-written gate derivatives so that the cells' equations live in one place only. The
affine parts are then differentiated by hand, which is where the structure is::

    ∂a/∂W[k, m] = e_k · v_m      (v = u or h_{t-1}: an outer product)      ∂a/∂b = I

and the chain rule joins them, layer by layer (the layer below has already been done at this
step, so ``∂u/∂s_{t-1}`` and ``∂u/∂θ`` are known)::

    ∂s'_l/∂s_{t-1} = A_ih W_ih ∂u/∂s_{t-1} + A_hh W_hh E_h + B_h E_h + B_c E_c
    ∂s'_l/∂θ      = A_ih (W_ih ∂u/∂θ + [I ⊗ u | I]) + A_hh [I ⊗ h_{t-1} | I]

(``A = ∂s'_l/∂a``, ``B = ∂s'_l/∂(h, c)_{t-1}`` through the direct paths, ``E`` picks layer l's
part of the state). Everything runs in float64 on the backend's arrays.

Not covered: bidirectional layers (a reverse direction is not a forward-in-time map),
``proj_size > 0`` and inter-layer dropout in training mode (call ``.eval()``).
"""
from __future__ import annotations

from .autograd import enable_grad, no_grad
from .nn.cells import ElmanEquations, GRUEquations, LSTMEquations
from .nn.gru import GRU
from .nn.lstm import LSTM
from .nn.module import Module
from .nn.rnn import RNN
from .nn.rnn_base import RNNBase
from .tensor import Tensor

__all__ = ["StepMap", "recurrent_layer"]


def recurrent_layer(model, owner: str) -> RNNBase:
    """``model`` itself if it is an ``nn.RNN``/``LSTM``/``GRU``, else the one layer inside it
    (e.g. a task's ``SequenceModel``); ``TypeError`` otherwise."""
    if isinstance(model, RNNBase):
        return model
    found = [m for m in model.modules() if isinstance(m, RNNBase)] \
        if isinstance(model, Module) else []
    if len(found) != 1:
        raise TypeError(f"{owner}: expected an nn.RNN, nn.LSTM or nn.GRU, or a module holding "
                        f"exactly one, got {type(model).__name__}"
                        + (f" holding {len(found)}" if isinstance(model, Module) else ""))
    return found[0]


class StepMap:
    """The step ``s_t = F(s_{t-1}, x_t; θ)`` of ``rnn`` and its Jacobians (module docstring).

    ``StepMap(rnn, x, h0, owner)`` checks the layer and the input the way ``rnn(x, h0)``
    does (by running it once, without a graph) and keeps, in float64:

    * ``inputs``: the input sequence ``(T, N, H_in)`` (time-major, unbatched → N = 1);
    * ``initial``: the initial state ``(N, S)``;
    * ``params``: ``[(name, Parameter)]`` and ``slices``: where each lies in θ (P numbers).

    :meth:`step` advances one step; :meth:`output` reads the top layer's ``h_t`` off a state.
    """

    def __init__(self, rnn, x: Tensor, h0=None, owner: str = "bptt"):
        rnn = recurrent_layer(rnn, owner)
        if rnn.bidirectional:
            raise ValueError(f"{owner}: a bidirectional layer has no forward-in-time state "
                             "(its reverse direction reads the future); use "
                             "bidirectional=False")
        if rnn.proj_size > 0:
            raise NotImplementedError(f"{owner}: LSTM with proj_size > 0 is not supported")
        if rnn.training and rnn.dropout > 0 and rnn.num_layers > 1:
            raise ValueError(f"{owner}: inter-layer dropout is random in training mode; call "
                             f"rnn.eval() (or use dropout=0)")
        with no_grad():
            rnn(x, h0)                     # the layer's own checks of x and h0, same errors
        self.rnn, self.owner = rnn, owner
        self.is_lstm = isinstance(rnn, LSTM)
        self.equations = _equations(rnn)
        self.layers, self.hidden = rnn.num_layers, rnn.hidden_size
        self.per_layer = self.hidden * (2 if self.is_lstm else 1)    # S_l
        self.size = self.layers * self.per_layer                      # S
        self.unbatched = x.ndim == 2
        seq = x.detach().astype("float64")
        if self.unbatched:
            seq = seq.unsqueeze(1)
        elif rnn.batch_first:
            seq = seq.transpose(0, 1)
        self.xp = seq.xp
        self.inputs = seq.data                                         # (T, N, H_in)
        self.batch = self.inputs.shape[1]
        self.params = list(rnn.named_parameters())
        self.slices, start = {}, 0
        for name, p in self.params:
            self.slices[name] = slice(start, start + p.numel())
            start += p.numel()
        self.num_params = start                                        # P
        self.weights = {name: p.data.astype("float64") for name, p in self.params}
        self.initial = self._initial_state(h0)

    # ------------------------------------------------------------------------ the state
    def _initial_state(self, h0):
        """``h0`` (or ``(h0, c0)``) as the state vector ``(N, S)``; zeros when None."""
        if h0 is None:
            return self.xp.zeros((self.batch, self.size))
        return self._vector(tuple(h0) if isinstance(h0, (tuple, list)) else (h0,),
                            self.unbatched)             # (a list [h0, c0] works, as in rnn())

    def _vector(self, parts: tuple, unbatched: bool):
        """The layer's state tensors (each ``(L, N, H)``, or ``(L, H)`` unbatched) as one
        state vector per sample ``(N, S)``, float64."""
        arrays = []
        for p in parts:
            a = p.detach().data.astype("float64")
            arrays.append(a[:, None, :] if unbatched else a)
        per_layer = self.xp.stack(arrays, axis=2)            # (L, N, 1 or 2, H)
        return per_layer.transpose(1, 0, 2, 3).reshape(self.batch, self.size)

    def layer_step(self, t: int, state):
        """``s_t`` from ``s_{t-1}`` ``(N, S)`` computed by the layer's own forward pass on
        input step ``t`` (in the layer's dtype), rather than by :meth:`step`: the two agree to
        rounding, but in a chaotic system rounding differences grow until the trajectories
        part, so "the layer's trajectory" must be the layer's."""
        dtype = self.rnn.weight_ih_l0.dtype
        per_layer = state.reshape(self.batch, self.layers, -1, self.hidden).transpose(1, 2, 0, 3)
        hx = tuple(Tensor(per_layer[:, k].astype(dtype)) for k in range(per_layer.shape[1]))
        x_t = Tensor(self.inputs[t:t + 1].astype(dtype))                  # (1, N, H_in)
        if self.rnn.batch_first:
            x_t = x_t.transpose(0, 1)
        with no_grad():
            _, final = self.rnn(x_t, hx if self.is_lstm else hx[0])
        return self._vector(final if isinstance(final, tuple) else (final,), False)

    def layer_rows(self, layer: int) -> slice:
        """Where layer ``layer``'s state ``[h | c]`` sits in ``s``."""
        return slice(layer * self.per_layer, (layer + 1) * self.per_layer)

    def h_rows(self, layer: int) -> slice:
        """Where layer ``layer``'s hidden state ``h`` sits in ``s``."""
        start = layer * self.per_layer
        return slice(start, start + self.hidden)

    def output(self, state):
        """The top layer's ``h_t`` ``(N, H)`` of a state ``(N, S)``: the layer's output."""
        return state[:, self.h_rows(self.layers - 1)]

    # ------------------------------------------------------------------------- one step
    def step(self, t: int, state, with_params: bool = True) -> tuple:
        """Advance from ``state`` = ``s_{t-1}`` ``(N, S)`` with input step ``t``.

        Returns ``(s_t (N, S), J_t (N, S, S), D_t (N, S, P) or None)``; ``D_t`` is skipped when
        ``with_params`` is False (Lyapunov spectra need only ``J_t``)."""
        xp, N, S = self.xp, self.batch, self.size
        new = xp.empty((N, S))
        jac = xp.zeros((N, S, S))
        dpar = xp.zeros((N, S, self.num_params)) if with_params else None
        u = self.inputs[t]                         # this layer's input (N, H_in_l)
        du_ds, du_dp = None, None                  # ∂u/∂s_{t-1}, ∂u/∂θ (zero for layer 1)
        for layer in range(self.layers):
            rows, hr = self.layer_rows(layer), self.h_rows(layer)
            w_ih, w_hh, b_ih, b_hh = self._layer_weights(layer)
            h_prev = state[:, hr]
            c_prev = state[:, hr.stop:rows.stop] if self.is_lstm else None
            a_ih = u @ w_ih.T + (0 if b_ih is None else b_ih)
            a_hh = h_prev @ w_hh.T + (0 if b_hh is None else b_hh)
            s_new, d_aih, d_ahh, d_h, d_c = self._cell_jacobians(a_ih, a_hh, h_prev, c_prev)
            new[:, rows] = s_new
            # ∂s'_l/∂s_{t-1}: through a_hh and the direct paths from layer l's own state …
            jac[:, rows, hr] = d_ahh @ w_hh + d_h
            if self.is_lstm:
                jac[:, rows, hr.stop:rows.stop] = d_c
            # … and through a_ih from the layer below's new h (which depends on s_{t-1}).
            if du_ds is not None:
                jac[:, rows, :] += d_aih @ (w_ih @ du_ds)
            if with_params:
                self._param_jacobian(dpar, layer, rows, d_aih, d_ahh, u, h_prev, w_ih, du_dp)
            u, du_ds = s_new[:, :self.hidden], jac[:, hr, :]
            du_dp = None if dpar is None else dpar[:, hr, :]
        return new, jac, dpar

    def _layer_weights(self, layer: int) -> tuple:
        w = self.weights
        b = (w[f"bias_ih_l{layer}"], w[f"bias_hh_l{layer}"]) if self.rnn.bias else (None, None)
        return (w[f"weight_ih_l{layer}"], w[f"weight_hh_l{layer}"]) + b

    def _param_jacobian(self, dpar, layer, rows, d_aih, d_ahh, u, h_prev, w_ih, du_dp) -> None:
        """Fill ``∂s'_l/∂θ`` (rows of layer l of ``D_t``): the outer products of the affine
        maps, plus θ's path through the layer below's new ``h`` (``W_ih ∂u/∂θ``)."""
        N, rows_n = d_aih.shape[0], d_aih.shape[1]
        sl = self.slices
        dpar[:, rows, sl[f"weight_ih_l{layer}"]] = (
            d_aih[:, :, :, None] * u[:, None, None, :]).reshape(N, rows_n, -1)
        dpar[:, rows, sl[f"weight_hh_l{layer}"]] = (
            d_ahh[:, :, :, None] * h_prev[:, None, None, :]).reshape(N, rows_n, -1)
        if self.rnn.bias:
            dpar[:, rows, sl[f"bias_ih_l{layer}"]] = d_aih
            dpar[:, rows, sl[f"bias_hh_l{layer}"]] = d_ahh
        if du_dp is not None:
            dpar[:, rows, :] += d_aih @ (w_ih @ du_dp)

    def _cell_jacobians(self, a_ih, a_hh, h_prev, c_prev) -> tuple:
        """The cell's parameter-free update and its exact Jacobians, by one reverse pass.

        Each sample is repeated S_l times along the batch; the backward pass is seeded with
        the identity, so batch row (n, i) returns row i of sample n's Jacobians. Returns
        ``(s'_l (N, S_l), ∂s'/∂a_ih (N, S_l, G·H), ∂s'/∂a_hh, ∂s'/∂h_{t-1} (N, S_l, H),
        ∂s'/∂c_{t-1} (N, S_l, H) or None)`` (the last two: the direct paths only)."""
        xp, K = self.xp, self.per_layer
        N = a_ih.shape[0]

        def leaf(a):
            return None if a is None else Tensor(xp.repeat(a, K, axis=0), requires_grad=True)
        leaves = [leaf(a) for a in (a_ih, a_hh, h_prev, c_prev)]
        A_ih, A_hh, H_prev, C_prev = leaves
        with enable_grad():
            states = self.equations.step(A_ih, A_hh, (H_prev,) if C_prev is None
                                         else (H_prev, C_prev))
            out = states[0] if len(states) == 1 else Tensor.cat(list(states), axis=1)
            seed = xp.tile(xp.eye(K), (N, 1))                  # (N·K, K): one-hot rows
            out.backward(seed)
        s_new = out.data.reshape(N, K, K)[:, 0, :]             # every copy holds the value
        # A leaf the update does not read (h_{t-1} in Elman and LSTM cells: it acts only
        # through a_hh) got no gradient: its direct Jacobian is zero.
        grads = [None if t is None else
                 (t.grad.data if t.grad is not None else xp.zeros(t.shape)).reshape(N, K, -1)
                 for t in leaves]
        return (s_new, *grads)


def _equations(rnn: RNNBase):
    """The cell's step equations (``nn.cells``) for this layer, without its projection."""
    if isinstance(rnn, RNN):
        return ElmanEquations(rnn.nonlinearity)
    if isinstance(rnn, GRU):
        return GRUEquations()
    return LSTMEquations()
