"""Reproductions (tinygrad_rnn.reproductions, `python -m tinygrad_rnn reproduce`): the
machinery end to end on tiny plans, the claims' verdicts, and the pieces that carry the
papers' numbers (the copy baseline, the IRNN initialisation, the Jacobian bound)."""
import concurrent.futures
import csv
import json
import math
import os

import pytest

from tinygrad_rnn import backend, reproductions
from tinygrad_rnn.autograd import no_grad
from tinygrad_rnn.cli import main
from tinygrad_rnn.reproductions import base, clipping, copy_memory, irnn_adding
from tinygrad_rnn.train import TrainConfig, Trainer

np = backend.np

CLAIM_KEYS = {"claim", "paper_value", "measured", "holds"}

#: Plans small enough for the suite: a few steps on short sequences.
TINY = {
    "copy": base.Plan({"T": [3], "cell": ["rnn", "lstm"], "seed": [0]},
                      dict(copy_memory.QUICK.fixed, steps=2)),
    "irnn-adding": base.Plan({"T": [6], "model": ["irnn", "tanh"], "seed": [0]},
                             dict(irnn_adding.QUICK.fixed, steps=2)),
    "clipping": base.Plan({"T": [6], "clip": [0.0, 1.0], "seed": [0]},
                          dict(clipping.QUICK.fixed, steps=2, hidden=8)),
}


def test_the_three_reproductions_are_there():
    assert reproductions.names() == ["clipping", "copy", "irnn-adding"]
    with pytest.raises(ValueError, match="unknown reproduction 'cpy'.*copy"):
        reproductions.get("cpy")


@pytest.fixture
def tiny_copy(monkeypatch):
    """The copy reproduction with a tiny plan whose delay counts as one of the paper's."""
    monkeypatch.setattr(copy_memory, "QUICK", TINY["copy"])
    monkeypatch.setattr(copy_memory, "PAPER_DELAYS", (3,))


@pytest.mark.parametrize("name", sorted(TINY))
def test_a_reproduction_writes_rows_and_claims(name, tmp_path, monkeypatch, tiny_copy):
    module = reproductions.get(name)
    monkeypatch.setattr(module, "QUICK", TINY[name])
    monkeypatch.setattr(irnn_adding, "PAPER_LENGTHS", (6,))      # claims at the tiny T
    out = str(tmp_path / name)
    summary = reproductions.run(name, quick=True, out=out,
                                executor=concurrent.futures.ThreadPoolExecutor(1),
                                log=lambda line: None)
    with open(os.path.join(out, "results.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == TINY[name].size() and all(r["status"] == "ok" for r in rows)
    with open(os.path.join(out, "summary.json")) as f:
        on_disk = json.load(f)
    assert on_disk["reproduction"] == name and on_disk["plan"] == "quick"
    claims = on_disk["claims"]
    assert claims and all(CLAIM_KEYS <= set(c) and "T" in c for c in claims)
    assert all(isinstance(c["holds"], bool) for c in claims)
    assert [c["claim"] for c in claims] == [c["claim"] for c in summary["claims"]]


def test_cli_prints_the_claims_and_reruns_nothing(tmp_path, tiny_copy, capsys):
    out = str(tmp_path / "copy")
    assert main(["reproduce", "copy", "--quick", "--out", out]) == 0   # a local process
    text = capsys.readouterr().out
    assert "tanh RNN (80 units) stays at the memoryless baseline" in text
    assert "claims hold; 2 runs (0 failed)" in text
    assert main(["reproduce", "copy", "--quick", "--out", out]) == 0
    assert "2 of 2 runs already finished" in capsys.readouterr().err


def test_unknown_reproduction_is_a_one_line_error(capsys):
    assert main(["reproduce", "nope"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown reproduction 'nope'" in err


# ------------------------------------------------------------------------------- copy

def test_copy_baseline_is_the_papers():
    assert copy_memory.baseline(100) == pytest.approx(0.1733, abs=5e-5)   # the paper's value
    assert copy_memory.baseline(500) == pytest.approx(10 * math.log(8) / 520)


def test_copy_run_waits_T_steps_and_starts_at_the_memoryless_cross_entropy(tmp_path):
    row = copy_memory.run_one({"T": 7, "cell": "rnn", "seed": 0}, str(tmp_path), steps=1,
                              batch_size=4, lr=1e-3, clip=1.0)
    assert row["baseline"] == pytest.approx(10 * math.log(8) / 27)
    # An untrained model guesses nearly uniformly: about ln 8 per recalled symbol.
    assert row["recall_ce"] == pytest.approx(math.log(8), rel=0.1)
    assert row["ce_per_step"] == pytest.approx(row["recall_ce"] * 10 / 27)


@pytest.mark.parametrize("rnn, lstm, verdicts", [
    (1.00, 0.50, [True, True]),      # RNN at the baseline, LSTM far below: as the paper
    (1.00, 0.99, [True, False]),     # LSTM within noise of the baseline: not "below"
    (0.80, 0.50, [False, True]),     # RNN clearly below the baseline: not "stays at it"
])
def test_copy_claims(rnn, lstm, verdicts):
    b = copy_memory.baseline(100)
    rows = [{"T": 100, "cell": "rnn", "ce_per_step": rnn * b},
            {"T": 100, "cell": "lstm", "ce_per_step": lstm * b}]
    claims = copy_memory.claims(rows, base.Plan({"T": [20, 100]}, {}))   # 20: not a claim
    assert [c["holds"] for c in claims] == verdicts
    assert claims[0]["paper_value"] == 0.1733 and claims[1]["measured"] == lstm * b


# ------------------------------------------------------------------------ irnn-adding

def test_identity_init():
    trainer = Trainer(TrainConfig("adding", hidden=100, nonlinearity="relu", steps=1))
    irnn_adding.identity_init_(trainer.model.rnn)
    rnn = trainer.model.rnn
    assert (rnn.weight_hh_l0.numpy() == np.eye(100)).all()
    assert not rnn.bias_ih_l0.numpy().any() and not rnn.bias_hh_l0.numpy().any()
    w_ih = rnn.weight_ih_l0.numpy()
    assert w_ih.shape == (100, 2) and w_ih.dtype == rnn.weight_hh_l0.numpy().dtype
    assert 0.8e-3 < w_ih.std() < 1.2e-3 and abs(w_ih.mean()) < 2e-4


def test_irnn_claims():
    rows = [{"T": 150, "model": "irnn", "test_mse": 0.01, "baseline_mse": 0.167},
            {"T": 150, "model": "tanh", "test_mse": 0.165, "baseline_mse": 0.167}]
    plan = base.Plan({"T": [50, 150]}, {})              # 50: not in the paper, no claim
    assert [c["holds"] for c in irnn_adding.claims(rows, plan)] == [True, True]
    rows[0]["test_mse"] = 0.12                      # better than tanh, but not learnt
    rows[1]["test_mse"] = 0.10                      # tanh clearly below the baseline
    assert [c["holds"] for c in irnn_adding.claims(rows, plan)] == [False, False]


# --------------------------------------------------------------------------- clipping

def test_jacobian_bound_is_tight_for_a_linear_regime():
    """With zero input weights and biases the states stay at 0, where tanh' = 1: then
    ∂h_T/∂h_t = W_hh^(T-t) exactly, and for W_hh = 0.5·I the bound 0.5^(T-t) is reached at
    every lag (an off-by-one in the lags would give ratios of 2 or 0.5)."""
    trainer = Trainer(TrainConfig("adding", hidden=4, seq_len=12, steps=1))
    rnn = trainer.model.rnn
    with no_grad():
        for name, p in rnn.named_parameters():
            p.data = p.xp.eye(4, dtype=p.data.dtype) * 0.5 if name == "weight_hh_l0" \
                else p.xp.zeros(p.shape, dtype=p.data.dtype)
    bound = clipping.jacobian_bound(trainer)
    assert bound["sigma_max"] == pytest.approx(0.5)
    assert bound["bound_ratio"] == pytest.approx(1.0, rel=1e-5)
    assert bound["jacobian_first"] == pytest.approx(0.5 ** 11, rel=1e-5)


def test_jacobian_bound_holds_on_an_exploding_tanh_rnn():
    trainer = Trainer(TrainConfig("adding", hidden=16, seq_len=30, steps=1, seed=3))
    from tinygrad_rnn import bptt
    rnn = trainer.model.rnn
    bptt.scale_recurrent_weights_(rnn, 3.0 / bptt.spectral_radius(rnn.weight_hh_l0))
    bound = clipping.jacobian_bound(trainer)
    w = rnn.weight_hh_l0.numpy().astype("float64")
    assert bound["sigma_max"] == pytest.approx(np.linalg.svd(w, compute_uv=False)[0])
    assert 0 < bound["bound_ratio"] <= 1


def test_summary_json_is_strict_json():
    assert base.strict_json({"a": [math.nan, 1.5, {"b": math.inf}], "c": "x"}) == {
        "a": [None, 1.5, {"b": None}], "c": "x"}


def test_clipping_claims():
    plan = base.Plan({"T": [20]}, {})
    common = {"T": 20, "baseline_mse": 0.167, "bound_ratio_init": 0.9,
              "bound_ratio_trained": 0.5}
    rows = [{**common, "clip": 0.0, "diverged_at": 49, "test_mse": math.nan},
            {**common, "clip": 1.0, "diverged_at": None, "test_mse": 0.005}]
    claims = clipping.claims(rows, plan)
    assert [c["holds"] for c in claims] == [True, True, True, True]
    assert "1 of 1 runs diverged (steps [49])" in claims[0]["measured"]
    rows[0].update(diverged_at=None, test_mse=0.01)      # unclipped converged too
    rows[1].update(test_mse=0.2, bound_ratio_trained=1.5)
    assert [c["holds"] for c in clipping.claims(rows, plan)] == [False, False, True, False]
