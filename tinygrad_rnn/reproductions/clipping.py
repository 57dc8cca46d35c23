r"""``clipping``: Pascanu, Mikolov & Bengio (2013), "On the difficulty of training recurrent
neural networks".

Two results of the paper, on a long-lag task (the adding problem):

1. **Gradient-norm clipping** (their algorithm 1: rescale the gradient to norm c when it is
   larger) turns training that blows up on exploding gradients into training that converges.
   We start a tanh RNN in the exploding regime (``W_hh`` rescaled to spectral radius
   ``RADIUS`` > 1) and train it with SGD, once without clipping and once clipping at 1.
2. **The bound on the Jacobians** (their eq. 7): with ``h_t = tanh(W_hh h_{t-1} + ...)``,
   ``‖∂h_t/∂h_{t-1}‖ ≤ γ σ_max(W_hh)`` with ``γ = 1`` for tanh, so
   ``‖∂h_T/∂h_t‖ ≤ σ_max(W_hh)^(T-t)``. We measure the left side (spectral norms of the
   Jacobian products, :func:`tinygrad_rnn.bptt.jacobian_norms`, batch mean) on the
   untrained and on the trained model and report the largest ratio to the bound (at most 1
   when the bound holds).

**Setting.** Adding problem of length T, tanh RNN with 50 hidden units, ``W_hh`` rescaled to
spectral radius ``RADIUS``, SGD with momentum 0.9 (``train``'s SGD; the paper used plain
SGD), lr 0.05, batch 64; clip 0 (none) or 1 (the paper picks the threshold by the average
norm). A run whose loss turns NaN or infinite is recorded as diverged at that step.

* ``--quick``: T = 20 and 50, one seed, 1,500 steps per run (under a minute on 2 cores).
* full: T = 20, 50, 100 and seeds 0-2, 10,000 steps per run (about an hour). The paper went
  to T = 200 on several synthetic problems, with many more steps.
"""
from __future__ import annotations

import json
import math
import os

from .. import backend, bptt
from ..tensor import Tensor
from ..train import TrainConfig, Trainer
from .base import Plan, claim, figure, mean, select, train_to_the_end, training_record

np = backend.np    # host NumPy: singular values of small matrices, for the report

NAME = "clipping"
PAPER = ("Pascanu, Mikolov & Bengio 2013, On the difficulty of training recurrent neural "
         "networks")
SUMMARY = ("gradient-norm clipping turns diverging training into converging training; "
           "‖∂h_T/∂h_t‖ ≤ σ_max(W_hh)^(T-t)")

RADIUS = 1.5                        # spectral radius of the initial W_hh: exploding regime
SHARED = dict(hidden=50, lr=0.05, batch_size=64, radius=RADIUS)
HISTORY = "history.json"            # each run's loss and gradient norm per step
BASELINE_MSE = 1 / 6                # variance of the sum of two U(0, 1): always predict 1.0

QUICK = Plan(grid={"T": [20, 50], "clip": [0.0, 1.0], "seed": [0]},
             fixed=dict(steps=1500, **SHARED))
FULL = Plan(grid={"T": [20, 50, 100], "clip": [0.0, 1.0], "seed": [0, 1, 2]},
            fixed=dict(steps=10000, **SHARED))


def run_one(settings: dict, out: str, steps: int, hidden: int, lr: float, batch_size: int,
            radius: float) -> dict:
    """Train one tanh RNN on the adding problem of length ``settings["T"]`` with clipping
    ``settings["clip"]`` (0: none), measuring the Jacobian bound before and after."""
    config = TrainConfig("adding", seed=settings["seed"], steps=steps, seq_len=settings["T"],
                         hidden=hidden, nonlinearity="tanh", optim="sgd", lr=lr,
                         clip=settings["clip"], batch_size=batch_size)
    trainer = Trainer(config)
    rnn = trainer.model.rnn
    bptt.scale_recurrent_weights_(rnn, radius / bptt.spectral_radius(rnn.weight_hh_l0))
    before = jacobian_bound(trainer)
    diverged_at = train_to_the_end(trainer)
    metric = trainer.evaluate()        # NaN for a diverged model; its baseline still counts
    with open(os.path.join(out, HISTORY), "w", encoding="utf-8") as f:   # for the plot
        json.dump({"loss": trainer.history.loss, "grad_norm": trainer.history.grad_norm}, f)
    return {**training_record(trainer, diverged_at),
            "test_mse": metric.value, "baseline_mse": metric.baseline,
            **{f"{k}_init": v for k, v in before.items()},
            **{f"{k}_trained": v for k, v in jacobian_bound(trainer).items()}}


def jacobian_bound(trainer: Trainer, examples: int = 64) -> dict:
    """σ_max(W_hh), ``‖∂h_T/∂h_1‖`` and the largest ratio ``‖∂h_T/∂h_t‖ / σ_max^(T-t)``
    over the lags T - t ≥ 1 (at lag 0 both sides are 1), on ``examples`` held-out sequences
    (NaN for weights that are not finite)."""
    w_hh = backend.to_host(trainer.model.rnn.weight_hh_l0.data).astype("float64")
    if not np.isfinite(w_hh).all():
        return {"sigma_max": math.nan, "jacobian_first": math.nan, "bound_ratio": math.nan}
    sigma = float(np.linalg.norm(w_hh, ord=2))
    x, _ = trainer.task.test_set()
    assert isinstance(x, Tensor), "the adding problem's sequences are one padded Tensor"
    norms = bptt.jacobian_norms(trainer.model, x[:examples])[0]          # (T,), last is 1
    lags = np.arange(len(norms))[::-1]                                   # T - t
    with np.errstate(over="ignore"):
        ratio = norms[:-1] / np.power(sigma, lags[:-1])
    return {"sigma_max": sigma, "jacobian_first": float(norms[0]),
            "bound_ratio": float(np.nanmax(ratio))}


def claims(rows: list[dict], plan: Plan) -> list[dict]:
    """Per T: without clipping the run diverges or ends no better than the baseline; with
    clipping its test MSE ends below the baseline; the bound holds before and after."""
    out = []
    for T in plan.grid["T"]:
        free, clipped = select(rows, T=T, clip=0.0), select(rows, T=T, clip=1.0)
        baseline = mean(select(rows, T=T), "baseline_mse")    # on this test set (≈ 1/6)
        failed = [r["diverged_at"] is not None or not r["test_mse"] < baseline for r in free]
        diverged = [r["diverged_at"] for r in free if r["diverged_at"] is not None]
        out.append(claim(
            "without clipping, training on exploding gradients diverges (NaN loss) or ends no "
            "better than the baseline", "diverges",
            f"{len(diverged)} of {len(free)} runs diverged (steps {diverged}); test MSE "
            f"{mean(free, 'test_mse'):.4g}", bool(free) and all(failed), T=T, clip=0.0))
        out.append(claim("with the gradient norm clipped at 1, training converges below the "
                         "baseline MSE", f"< {baseline:.3f}", mean(clipped, "test_mse"),
                         bool(clipped) and all(r["test_mse"] < baseline for r in clipped),
                         T=T, clip=1.0))
        for when in ("init", "trained"):
            ratios = [r[f"bound_ratio_{when}"] for r in clipped + free
                      if not math.isnan(r[f"bound_ratio_{when}"])]
            out.append(claim(f"‖∂h_T/∂h_t‖ ≤ σ_max(W_hh)^(T-t) on the {when} models "
                             "(largest ratio to the bound)", "≤ 1", max(ratios, default=math.nan),
                             bool(ratios) and max(ratios) <= 1 + 1e-9, T=T, model=when))
    return out


def plot(rows: list[dict], path: str) -> str:
    """Left: the training loss of every run (seed 0) against the step, a cross where it
    became NaN. Right: held-out MSE against T, one line per clipping threshold."""
    from ..sweep import plot_sweep, run_name
    fig, (curves, summary) = figure(panels=2)
    for row in select(rows, seed=0, status="ok"):
        run_dir = os.path.join(os.path.dirname(path), run_name(
            {k: row[k] for k in ("T", "clip", "seed")}))
        with open(os.path.join(run_dir, HISTORY), encoding="utf-8") as f:
            loss = json.load(f)["loss"]
        label = f"T={row['T']}, " + ("no clipping" if row["clip"] == 0 else f"clip {row['clip']}")
        line, = curves.plot(range(1, len(loss) + 1), loss, lw=0.8, label=label)
        if row["diverged_at"] is not None:
            curves.plot(len(loss), loss[-1], "x", color=line.get_color(), ms=10)
    curves.axhline(BASELINE_MSE, color="k", ls="--", label="baseline (predict 1.0)")
    curves.set(yscale="log", xlabel="step", ylabel="training MSE",
               title="training loss (x: the loss became NaN next step)")
    curves.legend(fontsize="small")
    plot_sweep(rows, "T", path, metric="test_mse", lines="clip", ax=summary,
               title="held-out MSE (diverged runs: missing)")
    summary.axhline(BASELINE_MSE, color="k", ls="--")
    summary.set(yscale="log")
    fig.suptitle("gradient-norm clipping on exploding gradients (Pascanu et al. 2013)")
    fig.savefig(path, dpi=100)
    return path
