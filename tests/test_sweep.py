"""Sweeps (tinygrad_rnn.sweep, `python -m tinygrad_rnn sweep`): grid parsing, identical rows
from local processes and from a Dask cluster, resuming, and failed runs recorded."""
import concurrent.futures
import csv
import json
import math
import os
import sys

import pytest

from tinygrad_rnn import sweep
from tinygrad_rnn.cli import main
from tinygrad_rnn.train import TrainConfig, train

TINY = ["--steps", "6", "--set", "batch_size=4", "seq_len=6"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def in_process():
    """An executor that runs each run in this process, one at a time (fast, for logic tests)."""
    return concurrent.futures.ThreadPoolExecutor(1)


# ---------------------------------------------------------------------------------- grid

def test_parse_grid_values_and_order():
    grid = sweep.parse_grid(["hidden=8,16", "lr=1e-3,0.5", "cell=rnn,lstm", "unroll=true,false",
                             "batch-size=4"])
    assert grid == {"hidden": [8, 16], "lr": [0.001, 0.5], "cell": ["rnn", "lstm"],
                    "unroll": [True, False], "batch_size": [4]}
    assert [type(v) for v in grid["hidden"]] == [int, int]
    combos = sweep.combinations({"a": [1, 2], "b": ["x", "y", "z"]})
    assert len(combos) == 6 and combos[0] == {"a": 1, "b": "x"} and combos[1] == {"a": 1, "b": "y"}
    assert sweep.run_name({"hidden": 8, "lr": 0.001}) == "hidden=8,lr=0.001"


@pytest.mark.parametrize("bad", ["hidden", "hidden=", "=1,2", "hid den=1", "hidden=1,1"])
def test_parse_grid_rejects(bad):
    with pytest.raises(ValueError, match="--grid"):
        sweep.parse_grid([bad])


def test_unknown_setting_fails_before_any_run(tmp_path):
    with pytest.raises(ValueError, match="unknown setting 'hiden'.*hidden"):
        sweep.run_sweep(sweep.TrainJob("adding"), {"hiden": [8]}, str(tmp_path / "s"))
    assert not (tmp_path / "s").exists() or not os.listdir(tmp_path / "s")


# --------------------------------------------------------------- one row = one train run

def test_row_is_the_train_run_with_those_settings(tmp_path):
    """A sweep's row holds what `train` itself computes for those settings."""
    out = str(tmp_path / "s")
    rows = sweep.run_sweep(sweep.TrainJob("adding", steps=5, batch_size=4, seq_len=6),
                           {"hidden": [8]}, out, executor=in_process(), log=lambda line: None)
    alone = train(TrainConfig("adding", steps=5, batch_size=4, seq_len=6, hidden=8), quiet=True)
    assert rows[0]["status"] == "ok"
    assert rows[0]["metric"] == alone.metric.value
    assert rows[0]["last_loss"] == alone.history.loss[-1]
    run_dir = os.path.join(out, "hidden=8")
    assert sorted(os.listdir(run_dir)) == ["checkpoint.npz", "result.json", "summary.json"]
    with open(os.path.join(run_dir, "summary.json")) as f:
        assert json.load(f)["config"]["hidden"] == 8


# ------------------------------------------------------------------- executors agree

def test_local_processes_and_dask_cluster_give_identical_rows(tmp_path, capsys):
    distributed = pytest.importorskip("distributed")
    grid = ["--grid", "hidden=4,8", "cell=rnn,gru"]
    local = str(tmp_path / "local")
    assert main(["sweep", "adding", *grid, *TINY, "--out", local, "--workers", "2",
                 "--no-plot"]) == 0
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                  dashboard_address=None) as cluster:
        on_dask = str(tmp_path / "dask")
        assert main(["sweep", "adding", *grid, *TINY, "--out", on_dask, "--scheduler",
                     cluster.scheduler_address, "--no-plot"]) == 0
    rows = read_csv(os.path.join(local, "results.csv"))
    assert len(rows) == 4 and all(r["status"] == "ok" for r in rows)
    assert [(r["hidden"], r["cell"]) for r in rows] == [("4", "rnn"), ("4", "gru"),
                                                        ("8", "rnn"), ("8", "gru")]
    assert len({r["metric"] for r in rows}) == 4          # four different runs, really
    assert rows == read_csv(os.path.join(on_dask, "results.csv"))


def test_scheduler_without_dask_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)    # `import distributed` now fails
    status = main(["sweep", "adding", "--grid", "hidden=4", *TINY, "--out", str(tmp_path),
                   "--scheduler", "tcp://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert status == 1
    assert err.count("\n") == 1 and 'pip install "tinygrad-rnn[distributed]"' in err


def test_an_out_below_a_file_is_a_clear_one_line_error(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    status = main(["sweep", "adding", "--grid", "hidden=4", *TINY, "--out",
                   str(tmp_path / "file" / "sweep")])
    err = capsys.readouterr().err
    assert status == 1 and err.count("\n") == 1
    assert "--out: cannot create the directory" in err and "is a file" in err


# --------------------------------------------------------------- resume and failures

def test_rerun_skips_finished_runs_and_retries_failed_ones(tmp_path):
    out = str(tmp_path / "s")
    job = sweep.TrainJob("adding", steps=4, batch_size=4, seq_len=6)
    lines = []
    first = sweep.run_sweep(job, {"hidden": [4], "lr": [0.01, -1.0]}, out,
                            executor=in_process(), log=lines.append)
    assert [r["status"] for r in first] == ["ok", "failed"]
    done = os.path.join(out, "hidden=4,lr=0.01", "result.json")
    stamp = os.stat(done).st_mtime_ns
    lines.clear()
    second = sweep.run_sweep(job, {"hidden": [4, 6], "lr": [0.01, -1.0]}, out,
                             executor=in_process(), log=lines.append)
    assert lines[0].startswith("1 of 4 runs already finished")
    assert sorted(line.split("] ")[1].split(":")[0] for line in lines[1:]) == [
        "hidden=4,lr=-1.0", "hidden=6,lr=-1.0", "hidden=6,lr=0.01"]
    assert os.stat(done).st_mtime_ns == stamp             # not run (nor rewritten) again
    assert second[0] == first[0]
    assert [r["status"] for r in second] == ["ok", "failed", "ok", "failed"]
    assert len(read_csv(os.path.join(out, "results.csv"))) == 4


def test_changed_fixed_settings_rerun_the_runs(tmp_path):
    """A run done with --steps 3 is not "finished" for a sweep asking --steps 5."""
    out, quiet = str(tmp_path / "s"), (lambda line: None)
    short = sweep.run_sweep(sweep.TrainJob("adding", steps=3, batch_size=4, seq_len=6),
                            {"hidden": [4]}, out, executor=in_process(), log=quiet)
    lines = []
    longer = sweep.run_sweep(sweep.TrainJob("adding", steps=5, batch_size=4, seq_len=6),
                             {"hidden": [4]}, out, executor=in_process(), log=lines.append)
    assert (short[0]["steps"], longer[0]["steps"]) == (3, 5)
    assert not any("already finished" in line for line in lines)


def test_set_takes_one_value(tmp_path, capsys):
    assert main(["sweep", "adding", "--grid", "hidden=4", "--set", "steps=1,2", "--out",
                 str(tmp_path)]) == 1
    assert "--set steps takes one value; to vary it, put it in --grid" in capsys.readouterr().err


class Explodes:
    """A job that fails inside the run for one setting (as a diverging run would)."""

    def __call__(self, settings, out):
        if settings["x"] == 2:
            raise FloatingPointError("the loss became nan\nat step 3")
        return {"metric": settings["x"] * 0.5}


def test_a_failing_run_is_recorded_and_the_others_go_on(tmp_path):
    out = str(tmp_path / "s")
    rows = sweep.run_sweep(Explodes(), {"x": [1, 2, 3]}, out, executor=in_process(),
                           log=lambda line: None)
    assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
    assert rows[2]["metric"] == 1.5
    on_disk = read_csv(os.path.join(out, "results.csv"))
    assert on_disk[1]["error"] == "FloatingPointError: the loss became nan at step 3"
    assert on_disk[0]["error"] == "" and on_disk[0]["metric"] == "0.5"
    with open(os.path.join(out, "x=2", "result.json")) as f:
        assert json.load(f)["row"]["status"] == "failed"


def test_cli_exit_status_says_some_runs_failed(tmp_path, capsys):
    status = main(["sweep", "adding", "--grid", "lr=0.01,-1", *TINY, "--out", str(tmp_path),
                   "--workers", "1", "--no-plot"])
    assert status == 1
    assert "1 runs ok, 1 failed" in capsys.readouterr().out


# ---------------------------------------------------------------------------------- plot

def test_group_means_average_the_other_settings():
    rows = [{"status": "ok", "T": 10, "cell": "rnn", "seed": 0, "metric": 1.0},
            {"status": "ok", "T": 10, "cell": "rnn", "seed": 1, "metric": 3.0},
            {"status": "ok", "T": 5, "cell": "rnn", "seed": 0, "metric": 4.0},
            {"status": "failed", "T": 5, "cell": "rnn", "seed": 1, "metric": None},
            {"status": "ok", "T": 5, "cell": "lstm", "seed": 0, "metric": 0.5}]
    assert sweep.group_means(rows, "T", "metric", "cell") == {
        "rnn": [(5, 4.0), (10, 2.0)], "lstm": [(5, 0.5)]}


def test_plot_is_written_when_matplotlib_is_there(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [{"status": "ok", "T": t, "cell": c, "metric": math.sqrt(t)}
            for t in (1, 2) for c in ("rnn", "lstm")]
    path = sweep.plot_sweep(rows, "T", str(tmp_path / "p.png"), lines="cell")
    assert os.path.getsize(path) > 1000


def test_cli_writes_the_plot_when_matplotlib_is_there(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = str(tmp_path / "s")
    assert main(["sweep", "adding", "--grid", "hidden=4,6", "cell=rnn,gru", *TINY,
                 "--out", out]) == 0
    assert os.path.getsize(os.path.join(out, "sweep.png")) > 1000
    assert "sweep.png" in capsys.readouterr().out
