#!/usr/bin/env python
"""Differential fuzzer: random autograd programs on tinygrad_rnn and on live PyTorch.

Each graph is a short random program (see ``tests/graph_programs.py``) over a few leaves of
mixed dtypes (float32/64/16, int64, bool), shapes that broadcast (or do not), values with
NaN/inf mixed in, and steps drawn from the elementwise ops, reductions (``dim=()`` too),
views (indexing, reshape, transpose, detach), comparisons, in-place ops (under ``no_grad``
or not, on leaves, views and graph tensors), hooks (good and bad) and ``backward``. Both
libraries run the program; values, dtypes, gradients and the type (and step) of any error
must agree.

Two differences are by design and counted apart, never as agreement: PyTorch records an
in-place op on a tensor inside a graph; tinygrad_rnn records it too while no recorded op
(nor a view) has read that tensor yet, and otherwise refuses it with a clear RuntimeError
("... cannot be recorded in the graph ...", see docs/errors.md); and writing a view of a
tensor into that same tensor (``x[1:2] = x[-1]``, ``x.copy_(view of x)``) reads the value
first, as NumPy does, where PyTorch sometimes refuses ("refer to a single memory location");
and an in-place op reading memory it partly writes (``x += x[0:1]``) is always refused here,
where PyTorch refuses only the overlaps it can judge and computes the others in its own
iteration order (a value that depends on memory layout).

    python tests/fuzz_graphs.py --live --graphs 5000 [--seed 0] [--show 5]

(``--live`` needs torch.) The test suite replays recorded programs with PyTorch's outcomes,
written by ``tests/fixtures/record.py --only fuzz``, without torch.
"""
from __future__ import annotations

import argparse
import os
import random
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import graph_programs as gp  # noqa: E402

SHAPES = [(2, 3)] * 4 + [(3,), (1, 3), (2, 1), (), (3, 2)]
DTYPES = ["float32"] * 12 + ["float64"] * 4 + ["int64"] * 2 + ["float16", "bool"]
SCALARS = [0.5, -2.0, 3, 0, "inf", "nan", 1e30]
CLIPS = [(-0.5, 0.5), (None, 0.0), (0.0, None), (-1, 1), (0.25, 0.75)]
DIMS = [None, 0, -1, [], [0, 1], 1]
INDEXES = [0, -1, [0, 1], [[0, 1], [1, 3]], [[0, 2], 1], [1, 2]]
REFUSED = "cannot be recorded in the graph"
OVERLAP = "refer to a single memory location"

# op -> (weight, number of tensor arguments)
WEIGHTS = {
    "add": (6, 2), "sub": (3, 2), "mul": (6, 2), "div": (3, 2), "add_scalar": (2, 1),
    "mul_scalar": (2, 1), "pow_scalar": (3, 1), "neg": (1, 1), "exp": (2, 1), "log": (2, 1),
    "tanh": (2, 1), "sigmoid": (2, 1), "relu": (3, 1), "clip": (3, 1), "sum": (3, 1),
    "mean": (2, 1), "amax": (3, 1), "reshape": (2, 1), "transpose": (2, 1),
    "getitem": (4, 1), "matmul": (2, 2), "cat": (1, 2), "stack": (1, 2), "eq": (1, 2),
    "lt": (1, 2), "ge_scalar": (1, 1), "double": (1, 1), "float": (1, 1), "detach": (2, 1),
    "iadd": (4, 2), "isub": (3, 2), "imul": (3, 2), "idiv": (1, 2), "add_": (2, 2),
    "mul_": (2, 1), "zero_": (1, 1), "fill_": (1, 1), "clamp_": (2, 1), "copy_": (1, 2),
    "setitem": (3, 2), "hook": (4, 1),
}
OPS, OP_WEIGHTS = list(WEIGHTS), [w for w, _ in WEIGHTS.values()]
HOOK_KINDS = ["double"] * 5 + ["none"] * 2 + ["wrong_shape", "wrong_dtype", "not_a_tensor"]
# Deliberate differences the generator steers around (each is a clear error here, a silent
# conversion in PyTorch; docs/errors.md): float-only ops on integer tensors raise TypeError,
# and bool tensors only meet the ops below.
FLOAT_ONLY = {"exp", "log", "tanh", "sigmoid", "mean"}
BOOL_OK = {"add", "mul", "eq", "lt", "getitem", "reshape", "transpose", "detach", "cat",
           "stack", "double", "float"}
# PyTorch gives a view taken under no_grad of a tensor that requires grad requires_grad=True
# (yet no gradient flows through it); here it is a plain tensor. Views run with grad mode on.
VIEWS = {"getitem", "reshape", "transpose", "detach"}
# torch 2.13 crashes (segmentation fault) in register_hook on a view whose base was changed
# in place under no_grad; the generator registers hooks on non-views only.
ALIASING = gp.INPLACE | {"hook", "backward"}  # steps that give back their first argument


def random_values(rng: random.Random, shape, dtype):
    n = 1
    for s in shape:
        n *= s
    if dtype == "bool":
        flat = [rng.random() < 0.5 for _ in range(n)]
    elif dtype == "int64":
        flat = [rng.randint(-3, 3) for _ in range(n)]
    else:
        flat = [round(rng.gauss(0, 1.5), 3) for _ in range(n)]
        if n and rng.random() < 0.2:
            flat[rng.randrange(n)] = rng.choice(["nan", "inf", "-inf", 0.0])
    return _nest(flat, shape)


def _nest(flat, shape):
    if not shape:
        return flat[0]
    step = len(flat) // shape[0] if shape[0] else 0
    return [_nest(flat[i * step:(i + 1) * step], shape[1:]) for i in range(shape[0])]


def random_step(rng: random.Random, outcome: dict, views: set) -> dict:
    dtypes, grads = outcome["dtypes"], outcome["requires_grad"]
    allowed: list = []
    while not allowed:
        op = rng.choices(OPS, OP_WEIGHTS)[0]
        allowed = [i for i, d in enumerate(dtypes)
                   if (d.startswith("float") or op not in FLOAT_ONLY)
                   and (d != "bool" or op in BOOL_OK)]
        if op == "hook":  # mostly on tensors that can take one; never on views (below)
            allowed = [i for i in allowed if (grads[i] or rng.random() < 0.1) and i not in views]
    recent = allowed[-4:]
    args = [rng.choice(recent if rng.random() < 0.7 else allowed)
            for _ in range(WEIGHTS[op][1])]
    params: dict = {}
    if op in ("add_scalar", "mul_scalar", "ge_scalar"):
        params["scalar"] = rng.choice(SCALARS)
    elif op == "pow_scalar":
        params["exponent"] = rng.choice([2, 3, 0.5, -1, 0, 2.0, -0.5])
    elif op in ("clip", "clamp_"):
        params["lo"], params["hi"] = rng.choice(CLIPS)
    elif op in ("sum", "mean", "amax"):
        params["dim"], params["keepdim"] = rng.choice(DIMS), rng.random() < 0.3
    elif op == "reshape":
        params["shape"] = rng.choice([[-1], [1, -1], [-1, 1], [3, 2], [6]])
    elif op in ("getitem", "setitem"):
        params["index"] = rng.choice(INDEXES)
    elif op == "mul_":
        params["scalar"] = rng.choice([2, 0.5, -1])
    elif op == "fill_":
        params["value"] = rng.choice([1.5, 0, "nan", 2])
    elif op == "hook":
        params["kind"] = rng.choice(HOOK_KINDS)
    step = {"op": op, "args": args, "params": params}
    if op not in VIEWS and rng.random() < (0.85 if op in gp.INPLACE else 0.1):
        step["no_grad"] = True
    return step


def random_program(rng: random.Random, ours) -> dict:
    """A random program, grown one step at a time and run as it grows on ``ours`` (a
    library of graph_programs: tinygrad_rnn live, torch when recording), to stop at the
    first error and to pick a float tensor to call backward on."""
    inputs = []
    for _ in range(rng.randint(2, 4)):
        shape, dtype = rng.choice(SHAPES), rng.choice(DTYPES)
        inputs.append({"values": gp.encode_float(random_values(rng, shape, dtype)),
                       "dtype": dtype,
                       "requires_grad": dtype.startswith("float") and rng.random() < 0.7})
    program = {"inputs": inputs, "steps": []}
    outcome = gp.run(program, ours)
    for _ in range(rng.randint(2, 9)):
        views: set = set()
        for j, step in enumerate(program["steps"]):  # views, and in-place results of views
            if step["op"] in VIEWS or step["op"] in ALIASING and step["args"][0] in views:
                views.add(len(inputs) + j)
        program["steps"].append(random_step(rng, outcome, views))
        outcome = gp.run(program, ours)
        if outcome["error"]:
            return program
    if rng.random() < 0.85:
        floats = [i for i, d in enumerate(outcome["dtypes"]) if d.startswith("float")
                  and (outcome["requires_grad"][i] or rng.random() < 0.1)]
        if floats:
            n = len(inputs) + len(program["steps"])
            root = rng.choice(floats[-3:])
            program["steps"] += [{"op": "sum", "args": [root],
                                  "params": {"dim": None, "keepdim": False}},
                                 {"op": "backward", "args": [n]}]
    return program


def classify(ours: dict, theirs: dict) -> tuple[str, list]:
    """``("agree" | "refused" | "mismatch", differences)`` for one program's two outcomes."""
    diffs = gp.compare(ours, theirs)
    if not diffs:
        return "agree", []
    e = ours["error"]
    if e and REFUSED in e["message"] and (theirs["error"] is None
                                          or theirs["error"]["step"] > e["step"]):
        return "refused", diffs
    t = theirs["error"]
    if t and OVERLAP in t["message"] and (e is None or e["step"] > t["step"]) and \
            theirs["program"]["steps"][t["step"]]["op"] in ("setitem", "copy_"):
        return "overlap", diffs
    if e and OVERLAP in e["message"] and (t is None or t["step"] > e["step"]):
        return "overlap", diffs
    return "mismatch", diffs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--live", action="store_true", help="compare with torch (required)")
    parser.add_argument("--graphs", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--show", type=int, default=5, help="mismatches to print in full")
    args = parser.parse_args(argv)
    if not args.live:
        parser.error("pass --live (needs torch); the test suite replays recorded cases")
    ours, torch_lib = gp.Ours(), gp.Torch()
    counts = {"agree": 0, "refused": 0, "overlap": 0, "mismatch": 0}
    errors_agreed = 0
    for k in range(args.graphs):
        program = random_program(random.Random(args.seed * 1_000_003 + k), ours)
        mine, theirs = gp.run(program, ours), gp.run(program, torch_lib)
        theirs["program"] = program
        verdict, diffs = classify(mine, theirs)
        counts[verdict] += 1
        errors_agreed += verdict == "agree" and mine["error"] is not None
        if verdict == "mismatch" and counts["mismatch"] <= args.show:
            print(f"--- mismatch in graph {k} (seed {args.seed}):")
            print("   ", program)
            for d in diffs[:4]:
                print("   ", d)
    print(f"graphs tried: {args.graphs} (seed {args.seed}); agree: {counts['agree']} "
          f"(of which both raised the same error type: {errors_agreed}); refused by design "
          f"(in-place op inside a graph): {counts['refused']}; overlapping memory (see the "
          f"docstring): {counts['overlap']}; mismatches: {counts['mismatch']}")
    return 1 if counts["mismatch"] else 0


if __name__ == "__main__":
    sys.exit(main())
