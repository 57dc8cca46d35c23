"""The toy tasks (``tinygrad_rnn.tasks``): registry, deterministic data, models, metrics.

Every task must: make batches that depend only on (seed, step); build a model whose loss
falls within a few Adam steps; report a held-out metric next to a sensible baseline.
"""
from __future__ import annotations

import math

import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import optim, tasks
from tinygrad_rnn.backend import np
from tinygrad_rnn.nn.utils.rnn import PackedSequence, pad_packed_sequence
from tinygrad_rnn.tasks import charlm, health
from tinygrad_rnn.tasks.base import Metric

NAMES = ["adding", "charlm", "copy", "health", "health_varlen", "sine"]
#: Small sizes, so that every test here runs in well under a second.
SMALL = dict(batch_size=8, seq_len=12)


def small_task(name: str, seed: int = 0):
    return tasks.get(name)(seed=seed, **SMALL)


def padded(x):
    """A batch's inputs as a padded Tensor ``(N, L, H_in)`` (health_varlen's are packed)."""
    if isinstance(x, PackedSequence):
        return pad_packed_sequence(x, batch_first=True, total_length=SMALL["seq_len"])[0]
    return x


def test_registry_lists_every_task():
    assert tasks.names() == NAMES
    for name in NAMES:
        assert tasks.get(name).name == name


def test_unknown_task_error_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown task 'nope'; valid tasks are: adding, "
                                         "charlm, copy, health, health_varlen, sine"):
        tasks.get("nope")
    assert issubclass(tasks.UnknownTaskError, ValueError)


@pytest.mark.parametrize("name", NAMES)
def test_batches_are_a_function_of_seed_and_step(name):
    a, b, other_seed = small_task(name), small_task(name), small_task(name, seed=1)
    x1, y1 = a.batch(3)
    x2, y2 = b.batch(3)          # another instance, same seed: the same batch
    x1 = padded(x1)
    np.testing.assert_array_equal(x1.numpy(), padded(x2).numpy())
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    a.batch(4)                   # drawing other batches first changes nothing
    np.testing.assert_array_equal(padded(a.batch(3)[0]).numpy(), x1.numpy())
    assert not np.array_equal(padded(a.batch(5)[0]).numpy(), x1.numpy())
    assert not np.array_equal(padded(other_seed.batch(3)[0]).numpy(), x1.numpy())


@pytest.mark.parametrize("name", NAMES)
def test_batch_shapes_and_dtypes(name):
    task = small_task(name)
    x, y = task.batch(0)
    x_padded = padded(x)
    assert x_padded.ndim == 3 and x_padded.shape[0] == SMALL["batch_size"]
    assert x_padded.shape[1] == task.time_steps
    assert x_padded.shape[2] == task.input_size
    assert x_padded.dtype == tg.get_default_dtype()
    model = task.make_model(hidden=8)
    out = model(x)
    assert task.loss(out, y).shape == ()
    if task.readout == "last":
        assert out.shape == (SMALL["batch_size"], task.output_size)


#: Per task: options that make a problem small enough to show progress within 40 steps.
QUICK = {"adding": dict(batch_size=16, seq_len=6), "charlm": dict(batch_size=8, seq_len=12),
         "copy": dict(batch_size=16, seq_len=2, delay=1, symbols=3),
         "health": dict(batch_size=64), "health_varlen": dict(batch_size=64),
         "sine": dict(batch_size=8, seq_len=12)}


@pytest.mark.parametrize("name", NAMES)
def test_loss_falls_in_a_few_steps(name):
    task = tasks.get(name)(seed=0, **QUICK[name])
    tg.manual_seed(0)
    model = task.make_model(hidden=16)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    x0, y0 = task.batch(0)
    with tg.no_grad():
        before = task.loss(model(x0), y0).item()
    for step in range(40):
        x, y = task.batch(step)
        opt.zero_grad()
        task.loss(model(x), y).backward()
        opt.step()
    with tg.no_grad():
        after = task.loss(model(x0), y0).item()
    assert after < 0.8 * before, (before, after)


@pytest.mark.parametrize("name", NAMES)
def test_evaluate_reports_metric_and_baseline(name):
    task = small_task(name)
    tg.manual_seed(0)
    metric = task.evaluate(task.make_model(hidden=8))
    assert isinstance(metric, Metric)
    assert math.isfinite(metric.value) and math.isfinite(metric.baseline)
    assert metric.name and metric.baseline_name
    assert metric.describe().startswith(metric.name)


def test_baselines_have_their_textbook_values():
    adding = tasks.get("adding")(seq_len=20)
    assert abs(adding.evaluate(adding.make_model(hidden=4)).baseline - 1 / 6) < 0.015
    copy = tasks.get("copy")(symbols=8)
    assert copy.evaluate(copy.make_model(hidden=4)).baseline == 1 / 8
    lm = tasks.get("charlm")()
    metric = lm.evaluate(lm.make_model(hidden=4))
    assert 3.0 < metric.baseline < math.log2(len(lm.vocab))   # unigram < uniform
    assert metric.value > metric.baseline                      # an untrained model is worse
    people = tasks.get("health")()
    assert 0.5 <= people.evaluate(people.make_model(hidden=4)).baseline < 0.8


@pytest.mark.parametrize("name", NAMES)
def test_config_rebuilds_the_same_task(name):
    task = small_task(name, seed=3)
    again = type(task)(**task.config())
    assert again.config() == task.config()
    np.testing.assert_array_equal(padded(again.batch(2)[0]).numpy(),
                                  padded(task.batch(2)[0]).numpy())


def test_make_model_options():
    task = small_task("sine")
    model = task.make_model(hidden=5, layers=2, nonlinearity="relu", unroll=True)
    assert (model.rnn.hidden_size, model.rnn.num_layers) == (5, 2)
    assert model.rnn.nonlinearity == "relu" and model.rnn.unroll
    assert model.fc.out_features == task.output_size


def test_fused_and_unrolled_models_agree():
    task = small_task("adding")
    x, y = task.batch(0)
    tg.manual_seed(0)
    fused = task.make_model(hidden=6)
    tg.manual_seed(0)
    unrolled = task.make_model(hidden=6, unroll=True)
    np.testing.assert_allclose(fused(x).numpy(), unrolled(x).numpy(), rtol=1e-5, atol=1e-6)


def test_invalid_sizes_are_rejected():
    with pytest.raises(ValueError, match="batch_size must be a positive integer"):
        tasks.get("sine")(batch_size=-1)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        tasks.get("sine")(seed=-1)
    with pytest.raises(ValueError, match="at least 12"):
        tasks.get("health")(seq_len=6)


def test_copy_inputs_hold_the_string_then_the_go_marker():
    task = tasks.get("copy")(seq_len=3, delay=2, symbols=4, batch_size=2)
    x, y = task.batch(0)
    codes = x.numpy().argmax(-1)                    # back from one-hot
    assert x.shape == (2, 3 + 2 + 3, 6)
    np.testing.assert_array_equal(codes[:, :3], y.numpy())
    assert (codes[:, 5] == task.go).all()
    assert (codes[:, [3, 4, 6, 7]] == task.blank).all()


def test_adding_target_is_the_sum_of_the_marked_values():
    x, y = tasks.get("adding")(seq_len=10, batch_size=4).batch(0)
    x = x.numpy()
    assert (x[:, :, 1].sum(1) == 2).all()
    np.testing.assert_allclose((x[:, :, 0] * x[:, :, 1]).sum(1), y.numpy()[:, 0], rtol=1e-6)


def test_health_label_rule():
    flat = np.full((1, 24), 16.0)
    rising = flat + np.clip(np.arange(24) - 12, 0, None)        # +1 breath/min per hour
    pressure = np.full((1, 24), 120.0)
    falling = pressure - 2 * np.clip(np.arange(24) - 6, 0, None)
    assert health.at_risk(flat, pressure)[0] == 0
    assert health.at_risk(rising, pressure)[0] == 1
    assert health.at_risk(flat, falling)[0] == 1


def test_health_epochs_visit_every_person_once():
    task = tasks.get("health")(batch_size=500)
    seen = np.concatenate([task.batch(s)[0].numpy()[:, 0, 0] for s in range(4)])
    assert task.steps_per_epoch() == 4
    np.testing.assert_array_equal(np.sort(seen), np.sort(task.train_x[:, 0, 0]).astype(seen.dtype))


def test_charlm_default_corpus_is_fixed():
    assert charlm.grammar.corpus() == charlm.grammar.corpus()  # no hidden global RNG
    task = tasks.get("charlm")()
    assert len(task.text) >= charlm.grammar.CORPUS_CHARS
    assert task.text.startswith("one cat likes tom.")


def test_charlm_on_a_text_file(tmp_path):
    path = tmp_path / "poem.txt"
    path.write_text("the quick brown fox jumps over the lazy dog. " * 20, encoding="utf-8")
    task = tasks.get("charlm")(text=str(path), seq_len=10, batch_size=4)
    assert "".join(task.vocab) == " .abcdefghijklmnopqrstuvwxyz"
    x, y = task.batch(0)
    assert x.shape == (4, 10, len(task.vocab)) and y.shape == (4, 10)
    tg.manual_seed(0)
    sample = task.sample(task.make_model(hidden=8), length=30, prime="the ")
    assert sample.startswith("the ") and len(sample) == 34
    assert set(sample) <= set(task.vocab)


def test_charlm_text_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        tasks.get("charlm")(text=str(tmp_path / "missing.txt"))
    short = tmp_path / "short.txt"
    short.write_text("abc", encoding="utf-8")
    with pytest.raises(ValueError, match="too short"):
        tasks.get("charlm")(text=str(short))
    empty = tmp_path / "empty.txt"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="is empty"):
        tasks.get("charlm")(text=str(empty))


@pytest.mark.parametrize("name", NAMES)
def test_prediction_panels_draw(name):
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    task = small_task(name)
    fig = Figure()
    FigureCanvasAgg(fig)
    task.plot(fig.add_subplot(), task.make_model(hidden=4))
    fig.canvas.draw()


def test_charlm_panel_draws_for_a_short_held_out_text(tmp_path):
    """A --text file whose held-out 10% is shorter than the panel's 60 characters."""
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    path = tmp_path / "short.txt"
    path.write_text("hello world " * 30, encoding="utf-8")               # 360 characters
    task = tasks.get("charlm")(text=str(path), seq_len=10, batch_size=4)
    assert len(task.test_codes) < 61
    fig = Figure()
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    task.plot(ax, task.make_model(hidden=4))
    assert len(ax.patches) == len(task.test_codes) - 1                   # a bar per character


def test_metric_wording():
    lower = Metric("test MSE", 0.01, 0.05, "baseline", higher_is_better=False)
    assert lower.beats_baseline and "5x lower" in lower.describe()
    higher = Metric("accuracy", 0.9, 0.6, "majority", higher_is_better=True)
    assert higher.beats_baseline and "+0.3" in higher.describe()
    assert not Metric("accuracy", 0.5, 0.6, "majority", True).beats_baseline
    # A tie is neither better nor worse (a model that learned to predict the majority class).
    for higher_is_better in (True, False):
        tie = Metric("accuracy", 0.75, 0.75, "majority", higher_is_better)
        assert not tie.beats_baseline and tie.improvement() == "no better than the baseline"


# ------------------------------------------------------------------- chunked evaluation

class _Recording(tg.nn.Module):
    """Wraps a model and records the (batch, time) size of every call."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, []

    def forward(self, x):
        self.calls.append(x.shape[:2])
        return self.model(x)


@pytest.mark.parametrize("name", ["adding", "sine", "copy", "health"])
def test_evaluation_runs_in_chunks_with_the_same_result(monkeypatch, name):
    from tinygrad_rnn.tasks import base
    task = tasks.get(name)(seq_len=12)
    tg.manual_seed(0)
    model = _Recording(task.make_model(hidden=5))
    whole = task.evaluate(model)
    (n, length), = model.calls                   # one call with the whole held-out set
    budget = 3 * length                          # three sequences per chunk
    monkeypatch.setattr(base, "EVAL_CHUNK_STEPS", budget)
    model.calls.clear()
    chunked = task.evaluate(model)
    assert len(model.calls) == -(-n // 3)
    assert all(rows * steps <= budget for rows, steps in model.calls)
    assert chunked.baseline == whole.baseline
    assert chunked.value == pytest.approx(whole.value, rel=1e-5, abs=1e-7)
def test_health_varlen_labels_each_stay_on_its_own_first_and_last_hours():
    task = tasks.get("health_varlen")(batch_size=200)
    x, y = task.batch(0)
    records, lengths = pad_packed_sequence(x, batch_first=True)
    records, lengths, labels = records.numpy(), lengths.numpy(), y.numpy()
    assert lengths.min() >= 12 and lengths.max() <= 24 and len(set(lengths.tolist())) > 5
    for person, hours in enumerate(lengths):
        breathing = records[person, :hours, 0] * 4 + 16
        pressure = records[person, :hours, 1] * 20 + 120
        rise = breathing[-6:].mean() - breathing[:6].mean()
        drop = pressure[:6].mean() - pressure[-6:].mean()
        assert labels[person] == int(rise > 3.0 or drop > 15.0)


def test_health_varlen_model_reads_each_stay_to_its_own_end():
    """The batch's predictions equal each stay's prediction alone: the head reads each
    sequence's own final state, not the state after other sequences' lengths."""
    task = tasks.get("health_varlen")(batch_size=6)
    tg.manual_seed(0)
    model = task.make_model(hidden=8, cell="gru")
    x, _ = task.batch(0)
    together = task.predict(model, x).numpy()
    records, lengths = pad_packed_sequence(x, batch_first=True)
    for person in range(len(lengths)):
        alone = task.packed(records.numpy()[person:person + 1], lengths.numpy()[person:person + 1])
        np.testing.assert_allclose(task.predict(model, alone).numpy()[0], together[person],
                                   rtol=1e-5, atol=1e-6)
