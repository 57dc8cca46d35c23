"""``train --track-spectrum``: the spectrum of ``W_hh`` recorded during training."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tinygrad_rnn import cli, nn
from tinygrad_rnn.spectrum import SpectrumTracker


@pytest.mark.parametrize("make, names", [
    (lambda: nn.RNN(2, 4, num_layers=2, dtype="float64"), ["layer 0", "layer 1"]),
    (lambda: nn.GRU(2, 3, dtype="float64"), ["layer 0 r", "layer 0 z", "layer 0 n"]),
    (lambda: nn.LSTM(2, 3, dtype="float64"), ["layer 0 i", "layer 0 f", "layer 0 g",
                                              "layer 0 o"]),
])
def test_each_block_is_recorded_with_its_singular_values_and_eigenvalues(make, names):
    rnn = make()
    tracker = SpectrumTracker(1)
    tracker.record(7, nn.Sequential(rnn))
    assert tracker.records["steps"] == [7] and list(tracker.records["blocks"]) == names
    H = rnn.hidden_size
    for name, entry in tracker.records["blocks"].items():
        layer, gate = int(name.split()[1]), names.index(name) if len(names) > 2 else 0
        w = rnn.layer_weights(layer, 0)[1].numpy()[gate * H:(gate + 1) * H]
        sigma, moduli = np.array(entry["singular_values"][0]), np.array(
            entry["eigenvalue_moduli"][0])
        # σ² are the eigenvalues of WᵀW; Π|λ| = Π σ = |det W|.
        np.testing.assert_allclose(np.sort(sigma ** 2), np.linalg.eigvalsh(w.T @ w),
                                   rtol=1e-10, atol=1e-14)
        assert np.all(np.diff(sigma) <= 0) and np.all(np.diff(moduli) <= 0)
        assert np.prod(moduli) == pytest.approx(abs(np.linalg.det(w)), rel=1e-9)
        assert moduli[0] <= sigma[0] * (1 + 1e-12)        # spectral radius ≤ σ_max


def test_train_stores_the_spectrum_in_the_summary(tmp_path, capsys):
    status = cli.main(["train", "sine", "--steps", "6", "--cell", "gru", "--track-spectrum",
                       "2", "--out", str(tmp_path), "--batch-size", "3", "--seq-len", "6",
                       "--hidden", "4", "--no-plot", "--quiet"])
    assert status == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "summary.json").read_text(encoding="utf-8"))
    spectrum = summary["spectrum"]
    assert spectrum["steps"] == [1, 2, 4, 6]
    sigmas = np.array(spectrum["blocks"]["layer 0 z"]["singular_values"])
    assert sigmas.shape == (4, 4)
    assert not np.allclose(sigmas[0], sigmas[-1])           # training moved the weights
    assert summary["task"] == "sine"                        # the rest of the summary is kept


def test_a_negative_interval_is_refused(capsys):
    status = cli.main(["train", "sine", "--steps", "2", "--track-spectrum", "-1", "--quiet",
                       "--no-plot", "--out", "unused"])
    assert status != 0 and "--track-spectrum" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::RuntimeWarning")     # overflows of a diverging run
def test_a_diverging_run_stops_with_its_reason_not_an_svd_failure(tmp_path, capsys):
    """Its weights turn non-finite one step before its loss: the spectrum records NaN and
    the trainer's own message ("training diverged") reaches the user."""
    rnn = nn.RNN(2, 3, dtype="float64")
    rnn.weight_hh_l0.data[0, 0] = np.inf
    tracker = SpectrumTracker(1)
    tracker.record(1, rnn)
    entry = tracker.records["blocks"]["layer 0"]
    assert np.isnan(entry["singular_values"][0]).all()
    assert np.isnan(entry["eigenvalue_moduli"][0]).all()
    status = cli.main(["train", "sine", "--optim", "sgd", "--lr", "100", "--clip", "0",
                       "--steps", "30", "--track-spectrum", "1", "--out", str(tmp_path),
                       "--batch-size", "3", "--seq-len", "6", "--hidden", "4", "--quiet",
                       "--no-plot"])
    err = capsys.readouterr().err
    assert status == 1 and "training diverged" in err and "SVD" not in err
