"""``train --track-spectrum``: the spectrum of ``W_hh`` recorded during training."""
from __future__ import annotations

import json
import signal

import numpy as np
import pytest

from tinygrad_rnn import cli, nn, spectrum
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


@pytest.mark.skipif(not hasattr(signal, "raise_signal"), reason="needs signal.raise_signal")
def test_an_interrupted_run_resumed_as_told_keeps_the_whole_spectrum(tmp_path, capsys,
                                                                    monkeypatch):
    """Ctrl-C after step 3, then the printed resume command: the summary's spectrum equals
    an uninterrupted run's (it used to hold nothing: the command dropped --track-spectrum,
    and the records before the interruption were lost)."""
    tiny = ["--cell", "gru", "--batch-size", "3", "--seq-len", "6", "--hidden", "4",
            "--no-plot", "--quiet"]
    assert cli.main(["train", "sine", "--steps", "8", "--track-spectrum", "2", "--out",
                     str(tmp_path / "fresh"), *tiny]) == 0
    record = SpectrumTracker.record

    def record_then_interrupt(self, step, model):
        record(self, step, model)
        if step == 3:
            signal.raise_signal(signal.SIGINT)    # as Ctrl-C: the run stops after this step
    monkeypatch.setattr(SpectrumTracker, "record", record_then_interrupt)
    assert cli.main(["train", "sine", "--steps", "8", "--track-spectrum", "1", "--out",
                     str(tmp_path / "cut"), *tiny]) == 130
    monkeypatch.setattr(SpectrumTracker, "record", record)
    command = capsys.readouterr().err.split("resume with: ")[1].split()
    assert command[command.index("--track-spectrum") + 1] == "1"
    assert cli.main(command[3:] + ["--track-spectrum", "2", "--no-plot", "--quiet"]) == 0
    fresh, resumed = (json.loads((tmp_path / d / "summary.json").read_text())["spectrum"]
                      for d in ("fresh", "cut"))
    steps = resumed["steps"]
    assert steps[:3] == [1, 2, 3] and steps[3:] == [4, 6, 8]   # the interval given on resume
    for name, entry in fresh["blocks"].items():
        for key in entry:
            keep = [resumed["steps"].index(s) for s in fresh["steps"]]
            assert [resumed["blocks"][name][key][i] for i in keep] == entry[key]
    assert not (tmp_path / "cut" / spectrum.PARTIAL).exists()


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
