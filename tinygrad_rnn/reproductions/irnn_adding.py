r"""``irnn-adding``: Le, Jaitly & Hinton (2015), "A Simple Way to Initialize Recurrent Networks
of Rectified Linear Units", the adding problem (section 4.1).

A ReLU RNN whose recurrent matrix starts as the identity and whose biases start at zero (the
IRNN: ``h_t = relu(W_ih x_t + h_{t-1})`` at first, so the state is carried unchanged and
gradients neither vanish nor explode through it) learns the adding problem at lengths where a
tanh RNN stays at the baseline MSE 0.167 (always predict the mean, 1.0). The paper reports
this for T = 150, 200, 300 and 400, with the tanh RNN failing from T = 150 on.

**Setting.** The package's ``adding`` task (two channels, one mark in each half, target read
after the last step, as in the paper); 100 hidden units, batch 16, gradient norm clipped at 1;
the IRNN's input weights drawn from N(0, 0.001²) as in the paper, the tanh RNN keeps
PyTorch's default initialisation. **Optimizer: Adam, lr 1e-3** — the paper used plain SGD
(lr 1e-2 ... 1e-5 searched) over far more steps than a CPU run allows: with ``train``'s SGD
(momentum 0.9, lr 0.01) neither model moved from the baseline in 3,000 steps at T = 50.

* ``--quick``: T = 50 and 150, 3,000 steps per model (about two minutes on 2 cores). T = 50
  is not in the paper: it shows the effect within a CPU budget (in the rows, not a claim).
* full: the paper's T = 150, 200, 300, 400, 20,000 steps per model (about an hour).
"""
from __future__ import annotations

from ..nn import init
from ..train import TrainConfig, Trainer
from .base import Plan, claim, figure, mean, select, train_to_the_end, training_record

NAME = "irnn-adding"
PAPER = ("Le, Jaitly & Hinton 2015, A Simple Way to Initialize Recurrent Networks of "
         "Rectified Linear Units (sec. 4.1)")
SUMMARY = ("adding problem: a ReLU RNN with identity W_hh and zero bias beats a tanh RNN, "
           "which stays at the baseline MSE 0.167")

BASELINE_MSE = 1 / 6          # variance of the sum of two U(0, 1): always predict 1.0
INPUT_STD = 1e-3              # the paper's N(0, 0.001²) input weights for the IRNN
SHARED = dict(hidden=100, batch_size=16, lr=1e-3, clip=1.0)
MODELS = {"irnn": "relu", "tanh": "tanh"}
PAPER_LENGTHS = (150, 200, 300, 400)

QUICK = Plan(grid={"T": [50, 150], "model": ["irnn", "tanh"], "seed": [0]},
             fixed=dict(steps=3000, **SHARED))
FULL = Plan(grid={"T": list(PAPER_LENGTHS), "model": ["irnn", "tanh"], "seed": [0]},
            fixed=dict(steps=20000, **SHARED))


def identity_init_(rnn, input_std: float = INPUT_STD) -> None:
    """The IRNN initialisation, in place: every ``weight_hh`` the identity, every bias zero,
    every ``weight_ih`` drawn from N(0, input_std²) (from the seeded global generator)."""
    for name, param in rnn.named_parameters():
        if name.startswith("weight_hh"):
            init.eye_(param)
        elif name.startswith("bias"):
            init.zeros_(param)
        elif name.startswith("weight_ih"):
            init.normal_(param, 0.0, input_std)


def run_one(settings: dict, out: str, steps: int, hidden: int, batch_size: int, lr: float,
            clip: float) -> dict:
    """Train the IRNN or the tanh RNN on the adding problem of length ``settings["T"]``."""
    model = settings["model"]
    config = TrainConfig("adding", seed=settings["seed"], steps=steps, seq_len=settings["T"],
                         hidden=hidden, nonlinearity=MODELS[model], batch_size=batch_size,
                         lr=lr, clip=clip, optim="adam")
    trainer = Trainer(config)
    if model == "irnn":
        # Re-initialise before the optimizer has any state: it holds the parameters
        # themselves, so the new values are what it updates.
        identity_init_(trainer.model.rnn)
    diverged_at = train_to_the_end(trainer)
    metric = trainer.evaluate()        # NaN for a diverged model; its baseline still counts
    return {**training_record(trainer, diverged_at),
            "test_mse": metric.value, "baseline_mse": metric.baseline}


def claims(rows: list[dict], plan: Plan) -> list[dict]:
    """Per length T of the paper: the IRNN's test MSE ends below both the tanh RNN's and half
    the baseline; the tanh RNN's ends within 10% of the baseline (it learns nothing). Other
    lengths (T = 50) are in the rows only."""
    out = []
    for T in [T for T in plan.grid["T"] if T in PAPER_LENGTHS]:
        irnn = mean(select(rows, T=T, model="irnn"), "test_mse")
        tanh = mean(select(rows, T=T, model="tanh"), "test_mse")
        baseline = round(mean(select(rows, T=T), "baseline_mse"), 4)   # this test set's
        out.append(claim("the IRNN learns the adding problem (test MSE below half the "
                         "baseline, and below the tanh RNN's)", "≈ 0 (well below 0.167)", irnn,
                         irnn < 0.5 * baseline and irnn < tanh, T=T, model="irnn",
                         baseline=baseline))
        out.append(claim("the tanh RNN stays at the baseline MSE", round(BASELINE_MSE, 3), tanh,
                         tanh >= 0.9 * baseline, T=T, model="tanh", baseline=baseline))
    return out


def plot(rows: list[dict], path: str) -> str:
    """Test MSE against T, one line per model, with the baseline."""
    from ..sweep import plot_sweep
    fig, ax = figure()
    plot_sweep(rows, "T", path, metric="test_mse", lines="model", ax=ax,
               title="adding problem: IRNN vs tanh RNN (Le et al. 2015)")
    ax.axhline(BASELINE_MSE, color="k", ls="--", label="baseline (predict 1.0)")
    ax.set(yscale="log", ylabel="held-out MSE")
    ax.legend(fontsize="small")
    fig.savefig(path, dpi=100)
    return path
