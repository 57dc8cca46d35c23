"""The adding problem at T = 100: the Elman RNN fails, the LSTM and the GRU solve it.

Takes about a minute and a half on a laptop CPU (three trainings, each under a minute; the
LSTM is the slowest). Pass --seed N to try another seed, --seq-len T or --steps N to explore.

The task (``tinygrad_rnn.tasks.adding``): each of T steps brings a value in [0, 1) and a
marker; two steps are marked, one in each half of the sequence, and after the last step the
network must output the sum of the two marked values. Always answering 1.0 gives a test MSE
of about 0.167 (the variance of the sum); remembering gives far less.

All three networks get exactly the same budget: hidden size, optimizer (Adam), learning
rate, gradient clipping, batches and number of steps; only the recurrent layer differs
(``TrainConfig(cell=...)``, or ``--cell`` on the command line). The same runs from a shell:

    python -m tinygrad_rnn train adding --seq-len 100 --hidden 32 --lr 0.01 --steps 3000 --cell rnn
    (and --cell lstm, --cell gru)

Why the difference: the first marked value is up to 100 steps before the loss. In the RNN
its gradient is multiplied by diag(tanh') W_hh once per step on the way back and vanishes
(see ``python -m tinygrad_rnn bptt --cell all`` and examples/gating_vs_vanishing.py); the
LSTM's cell state and the GRU's update gate give it a path whose factor the network learns
to hold near 1. (At initialisation their gradients fade too, the gates being half open: the
difference is that training can open them.)
"""
import argparse
import time

from tinygrad_rnn.train import TrainConfig, Trainer

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--seq-len", type=int, default=100, help="T (default: 100)")
parser.add_argument("--steps", type=int, default=3000, help="training steps (default: 3000)")
parser.add_argument("--seed", type=int, default=0, help="weights and data (default: 0)")
args = parser.parse_args()

SETTINGS = dict(seq_len=args.seq_len, steps=args.steps, seed=args.seed,
                hidden=32, batch_size=64, lr=0.01, optim="adam", clip=1.0)
SOLVED = 0.01          # a test MSE well below the baseline's 0.167: the sum is remembered

print(f"adding problem, T = {args.seq_len}: {args.steps} steps of Adam (lr 0.01, clip 1), "
      f"hidden 32, batch 64, seed {args.seed}")
print(f"{'cell':6s} {'test MSE':>9s} {'baseline':>9s} {'solved?':>8s} {'seconds':>8s}")
for cell in ("rnn", "lstm", "gru"):
    started = time.perf_counter()
    trainer = Trainer(TrainConfig("adding", cell=cell, **SETTINGS))
    trainer.run(quiet=True)
    metric = trainer.evaluate()                 # 4000 held-out sequences
    seconds = time.perf_counter() - started
    verdict = "yes" if metric.value < SOLVED else "no"
    print(f"{cell:6s} {metric.value:9.3g} {metric.baseline:9.3g} {verdict:>8s} "
          f"{seconds:8.1f}", flush=True)

print(f"\nsolved: test MSE < {SOLVED} (the baseline, always 1.0, has about 0.167)")
