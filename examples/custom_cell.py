"""Write your own recurrent cell: a leaky-integrator RNN in one small class.

Every recurrent layer of tinygrad_rnn runs one driver (``tinygrad_rnn/nn/recurrence.py``):
it owns the time loop, the input projection ``x_t W_ihᵀ + b`` of all steps at once, the
shift to ``h_{t-1}``, the state hook and the sums over time of backpropagation through time.
A *cell* is only its step equations. This script writes a new one, the leaky integrator of
computational neuroscience (a continuous-time RNN, discretised with step ``α``)::

    u_t = tanh(x_t W_ihᵀ + b_ih + h_{t-1} W_hhᵀ + b_hh)
    h_t = (1 - α) h_{t-1} + α u_t

and gets both implementations from the driver: the unrolled graph (autograd does BPTT) from
``step``, and the fused node (BPTT by hand) from three small methods. Its BPTT step::

    δ(a_t + r_t) = δh_t ⊙ α (1 - u_t²)        (into W_ih, W_hh, the biases and x)
    to h_{t-1}, besides W_hh:  δh_t ⊙ (1 - α)  (the leak: a path without a matrix product)

The script checks the two implementations against each other and against finite
differences, then times them.

Run it:  python examples/custom_cell.py      (a few seconds)
"""
import time

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor
from tinygrad_rnn.backend import np  # host NumPy, for making data
from tinygrad_rnn.nn.recurrence import Cell, run


class LeakyEquations(Cell):
    """``h_t = (1 - α) h_{t-1} + α tanh(a_t + r_t)``: one gate block, one state."""

    name = "leaky"
    uses_previous_states = False          # the backward pass reads u_t only

    def __init__(self, alpha: float = 0.5):
        self.alpha = alpha

    # ---- unrolled: primitive Tensor ops, autograd differentiates them
    def step(self, x_share, h_share, states):
        h_prev = states[0]
        u = (x_share + h_share).tanh()
        return (h_prev + (u - h_prev) * self.alpha,)

    # ---- fused: the same step on raw arrays, and its BPTT step by hand
    def forward_step(self, xp, rows, a, rec, prev, new):
        a += rec
        xp.tanh(a, out=a)                 # u_t, kept in place for the backward pass
        h = new[0]
        xp.subtract(a, prev[0], out=h)
        h *= self.alpha
        h += prev[0]                      # h_t = h_{t-1} + α (u_t - h_{t-1})

    def begin_backward(self, xp, gates, block_rows, batch):
        self.leak = xp.empty((batch, gates.shape[1]), dtype=gates.dtype)

    def backward_block(self, xp, block, gates, states, before, d_a):
        xp.multiply(gates, gates, out=d_a)  # for every step of the block at once:
        xp.subtract(1, d_a, out=d_a)
        d_a *= self.alpha                 # α (1 - u_t²)

    def backward_step(self, xp, rows, d_states, d_a, d_rec):
        d_h = d_states[0]
        d_a *= d_h                        # δ(a_t + r_t) = δh_t ⊙ α (1 - u_t²)
        leak = self.leak[:len(d_h)]
        xp.multiply(d_h, 1 - self.alpha, out=leak)
        return (leak,)                    # to h_{t-1}, besides W_hh


def leaky_layer(x, h0, weights, unroll, alpha=0.5):
    """The hidden states ``(T, N, H)`` of the leaky RNN over ``x`` ``(T, N, H_in)``."""
    (hs,) = run(LeakyEquations(alpha), x, (h0,), weights, unroll=unroll)
    return hs


def main():
    rng = np.random.default_rng(0)
    T, N, I, H = 20, 3, 4, 6
    arrays = [rng.standard_normal(s) * 0.5 for s in [(T, N, I), (N, H), (H, I), (H, H),
                                                      (H,), (H,)]]

    def gradients(unroll):
        x, h0, *weights = (Tensor(a, requires_grad=True) for a in arrays)
        hs = leaky_layer(x, h0, weights, unroll)
        (hs * hs).sum().backward()
        return hs.numpy(), [t.grad.numpy() for t in (x, h0, *weights)]

    fused, unrolled = gradients(unroll=False), gradients(unroll=True)
    worst = max(float(np.abs(a - b).max()) for a, b in zip(
        [fused[0], *fused[1]], [unrolled[0], *unrolled[1]]))
    print(f"fused vs unrolled, outputs and the gradients of x, h0 and 4 weights: "
          f"largest difference {worst:.1e}")

    small = [Tensor(a[..., :2] if k == 0 else a, requires_grad=True)
             for k, a in enumerate([rng.standard_normal(s) * 0.5 for s in
                                    [(5, 2, 2), (2, 3), (3, 2), (3, 3), (3,), (3,)]])]
    ok = tg.gradcheck(lambda x, h0, *w: leaky_layer(x, h0, w, unroll=False), small)
    print(f"fused BPTT against finite differences: {'ok' if ok else 'FAILED'}")

    for unroll in (False, True):
        start = time.perf_counter()
        for _ in range(20):
            gradients(unroll)
        per_step = (time.perf_counter() - start) / 20 * 1e3
        print(f"{'unrolled' if unroll else 'fused':>8}: {per_step:.2f} ms per forward+backward")


if __name__ == "__main__":
    main()
