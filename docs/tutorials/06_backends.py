# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 6. Switching backends
#
# All array math goes through one module, `tinygrad_rnn.backend`: NumPy on the CPU or CuPy
# on an NVIDIA GPU. The environment variable `TINYGRAD_RNN_BACKEND` picks one when the
# package is imported, so the same script runs on either:
#
# ```bash
# TINYGRAD_RNN_BACKEND=cupy python -m tinygrad_rnn train sine
# ```
#
# Random initial weights are drawn on the host from one seeded generator and then moved to
# the device, so a seed gives the same weights on both backends.

# %%
import os
import subprocess
import sys

from tinygrad_rnn import Tensor, backend
from tinygrad_rnn.backend import np

print("active backend:", backend.name)

# %% [markdown]
# ## The same program, started with the variable set
# We run a tiny program in a fresh interpreter, once per backend that works on this machine,
# and compare what it prints: the output of a seeded `nn.RNN`.

# %%
program = """
import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
tg.manual_seed(0)
rnn = nn.RNN(3, 4)
out, h = rnn(Tensor.ones(5, 2, 3))
print(tg.backend.name, *out.numpy().ravel()[:6])
"""

def run_on(name):
    env = dict(os.environ, TINYGRAD_RNN_BACKEND=name)
    done = subprocess.run([sys.executable, "-c", program], env=env, capture_output=True,
                          text=True)
    if done.returncode != 0:
        return None, done.stderr.strip().splitlines()[-1]
    fields = done.stdout.split()
    return (fields[0], np.array([float(v) for v in fields[1:]])), None

runs = {}
for name in ("numpy", "cupy"):
    result, error = run_on(name)
    runs[name] = result
    print(f"{name:5s} ->", result[1].round(5) if result else f"not available here ({error})")

# %% [markdown]
# Where CuPy is not installed (or no GPU answers) the error says so and names
# `pip install "tinygrad-rnn[cuda]"`: there is never a silent fallback to NumPy.
#
# ## Moving data
# `Tensor.numpy()` always returns a host NumPy array; `Tensor.to("cupy")` and
# `module.to("cupy")` move data; mixing tensors of two backends in one op is a clear error.

# %%
t = Tensor([1.0, 2.0])
print(type(t.numpy()).__name__, t.backend)

# %% [markdown]
# ## How the test suite checks CuPy without a GPU
# Every test runs twice in one pytest run: on NumPy, and on CuPy. Without a GPU, "CuPy" is a
# strict stand-in kept in `tests/cupy_standin/`: NumPy underneath, CuPy's host/device rules
# on top (a device array refuses NumPy functions and implicit conversion, and every
# device→host transfer is counted). It is not a GPU test, but it catches the classic bugs,
# and a test asserts that a whole training step makes no device→host transfer.
# `bash benchmarks/gpu.sh` is the one command for the first real GPU.

# %%
same_on_both = None
if runs["numpy"] and runs["cupy"]:
    same_on_both = float(np.abs(runs["numpy"][1] - runs["cupy"][1]).max())
key_numbers = {"numpy_ran": runs["numpy"] is not None, "cupy_ran": runs["cupy"] is not None,
               "max_difference_numpy_vs_cupy": same_on_both}
key_numbers
