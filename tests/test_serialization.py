"""``save`` / ``load``: .npz checkpoints that round-trip exactly, are written atomically, and
never unpickle anything."""
from __future__ import annotations

import math
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from tinygrad_rnn import Tensor, backend, nn, optim, serialization
from tinygrad_rnn.serialization import STRUCTURE_KEY, load, save

FIXTURES = Path(__file__).parent / "fixtures"
INVALID = "is not a valid tinygrad_rnn checkpoint"


def assert_same_array(loaded, original):
    """``loaded`` is a Tensor on the active backend with ``original``'s dtype and values."""
    assert isinstance(loaded, Tensor)
    assert loaded.backend == backend.name
    assert not loaded.requires_grad
    original = original.numpy() if isinstance(original, Tensor) else np.asarray(original)
    assert loaded.dtype == original.dtype and loaded.shape == original.shape
    np.testing.assert_array_equal(loaded.numpy(), original)


# ---------------------------------------------------------------------------- round trips

def test_flat_state_dict_round_trip_is_a_plain_npz(tmp_path):
    sd = {"rnn.weight_ih_l0": Tensor(np.random.default_rng(0).standard_normal((4, 3)),
                                     dtype="float32", requires_grad=True),
          "rnn.bias": Tensor(np.arange(4.0), dtype="float64"),
          "count": np.array([1, 2, 3], dtype=np.int64),
          "mask": np.array([True, False]),
          "small": np.arange(3, dtype=np.int32),
          "scalar": np.float32(2.5)}
    path = tmp_path / "model.npz"
    save(sd, path)
    with np.load(path, allow_pickle=False) as f:  # exactly what np.savez would have written
        assert f.files == list(sd)
    loaded = load(path)
    assert list(loaded) == list(sd)  # order kept
    for key, value in sd.items():
        assert_same_array(loaded[key], value)


def test_nested_checkpoint_round_trip(tmp_path):
    ckpt = {
        "model": {"fc.weight": Tensor([[1.0, 2.0]]), "fc.bias": Tensor([0.5], dtype="float64")},
        "optimizer": {"state": {0: {"step": 3, "exp_avg": np.ones(2, dtype=np.float32)}},
                      "param_groups": [{"lr": 0.001, "betas": (0.9, 0.999), "amsgrad": False,
                                        "params": [0, 1]}]},
        "step": 10, "loss": 0.1, "big": 2 ** 70, "tiny": 5e-324, "inf": float("inf"),
        "nan": float("nan"), "name": "charlm ✓", "none": None, "flag": True,
        "empty": {}, "empty_list": [], "history": [1.5, 2, "x", (None,)],
    }
    path = tmp_path / "ckpt.npz"
    save(ckpt, path)
    got = load(path)
    assert list(got) == list(ckpt)
    assert_same_array(got["model"]["fc.weight"], ckpt["model"]["fc.weight"])
    assert_same_array(got["model"]["fc.bias"], ckpt["model"]["fc.bias"])
    state = got["optimizer"]["state"]
    assert list(state) == [0]  # int keys stay ints
    assert_same_array(state[0]["exp_avg"], np.ones(2, dtype=np.float32))
    assert got["optimizer"]["param_groups"] == ckpt["optimizer"]["param_groups"]
    assert isinstance(got["optimizer"]["param_groups"][0]["betas"], tuple)
    for key in ("step", "loss", "big", "tiny", "inf", "name", "none", "flag", "empty",
                "empty_list", "history"):
        assert got[key] == ckpt[key] and type(got[key]) is type(ckpt[key]), key
    assert type(state[0]["step"]) is int and type(got["history"][1]) is int
    assert math.isnan(got["nan"])


def test_entry_names_and_structure_record_are_readable_with_numpy(tmp_path):
    save({"model": {"w": np.ones(2)}, "opt": {"state": {0: {"m": np.zeros(2)}}}, "step": 1},
         tmp_path / "c.npz")
    with np.load(tmp_path / "c.npz", allow_pickle=False) as f:
        assert f.files == ["model/w", "opt/state/0/m", STRUCTURE_KEY]
        assert '"step"' in f[STRUCTURE_KEY].item()


def test_colliding_entry_names_are_kept_apart(tmp_path):
    obj = {"a/b": np.array([1.0]), "a": {"b": np.array([2.0])}, STRUCTURE_KEY: np.array([3.0])}
    save(obj, tmp_path / "c.npz")
    got = load(tmp_path / "c.npz")
    assert [got["a/b"].item(), got["a"]["b"].item(), got[STRUCTURE_KEY].item()] == [1, 2, 3]


def test_single_tensor_and_list_roots(tmp_path):
    save(Tensor([1.0, 2.0]), tmp_path / "t.npz")
    assert_same_array(load(tmp_path / "t.npz"), Tensor([1.0, 2.0]))
    save([np.arange(2), 3], tmp_path / "l.npz")
    got = load(tmp_path / "l.npz")
    assert isinstance(got, list) and got[1] == 3
    assert_same_array(got[0], np.arange(2))


def test_path_used_as_given_and_bytes_are_deterministic(tmp_path):
    sd = {"w": np.arange(6.0).reshape(2, 3), "meta": {"epoch": 1}}
    save(sd, str(tmp_path / "model.ckpt"))
    save(sd, tmp_path / "again.ckpt")
    assert sorted(os.listdir(tmp_path)) == ["again.ckpt", "model.ckpt"]  # no ".npz" added
    assert (tmp_path / "model.ckpt").read_bytes() == (tmp_path / "again.ckpt").read_bytes()


def test_overwrite_replaces_the_old_checkpoint(tmp_path):
    path = tmp_path / "c.npz"
    save({"w": np.zeros(3)}, path)
    save({"w": np.ones(2)}, path)
    np.testing.assert_array_equal(load(path)["w"].numpy(), np.ones(2))


def test_pytorch_exported_state_dict_loads_as_flat_dict():
    sd = load(FIXTURES / "state_dict" / "rnn_fc_state.npz")
    assert list(sd)[:2] == ["rnn.weight_ih_l0", "rnn.weight_hh_l0"]
    assert list(sd)[-2:] == ["fc.weight", "fc.bias"]
    assert all(isinstance(v, Tensor) and v.dtype == np.float32 for v in sd.values())
    assert sd["fc.weight"].shape == (3, 12)


def test_non_numeric_arrays_stay_host_arrays(tmp_path):
    np.savez(tmp_path / "m.npz", meta=np.array('{"a": 1}'), w=np.ones(2))
    got = load(tmp_path / "m.npz")
    assert isinstance(got["meta"], np.ndarray) and got["meta"].item() == '{"a": 1}'
    assert isinstance(got["w"], Tensor)


def test_module_state_dict_round_trip(tmp_path):
    nn = pytest.importorskip("tinygrad_rnn.nn")
    if not hasattr(nn, "Linear"):
        pytest.skip("tinygrad_rnn.nn.Linear not available yet")
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    save(a.state_dict(), tmp_path / "lin.npz")
    b.load_state_dict(load(tmp_path / "lin.npz"))
    for (name, p), q in zip(a.named_parameters(), b.parameters()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)


leaves = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 80, 2 ** 80),
                   st.floats(allow_nan=False), st.text(max_size=8))
trees = st.recursive(leaves, lambda children: st.one_of(
    st.lists(children, max_size=3), st.tuples(children, children),
    st.dictionaries(st.one_of(st.text(max_size=5), st.integers(-5, 5)), children,
                    max_size=3)), max_leaves=12)


@given(trees)
def test_any_tree_of_python_values_round_trips(tmp_path_factory, tree):
    path = tmp_path_factory.mktemp("tree") / "t.npz"
    save({"tree": tree}, path)
    assert _same(load(path)["tree"], tree)


def _same(a, b) -> bool:
    """Equal with exact types, recursively (True == 1 would hide a bool/int mix-up)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same, a, b))
    return a == b


# ----------------------------------------------------------------------------- atomicity

def _failing_after_first_entry(exc_type):
    real = serialization._write_entry
    calls = []

    def write_entry(zf, name, array):
        if calls:
            raise exc_type("simulated crash in the middle of writing")
        calls.append(name)
        real(zf, name, array)
    return write_entry


@pytest.mark.parametrize("exc_type", [OSError, KeyboardInterrupt])
def test_interrupted_save_keeps_the_old_checkpoint(tmp_path, monkeypatch, exc_type):
    path = tmp_path / "c.npz"
    save({"w": np.arange(3.0), "step": 1}, path)
    old_bytes = path.read_bytes()
    monkeypatch.setattr(serialization, "_write_entry", _failing_after_first_entry(exc_type))
    with pytest.raises(exc_type, match="simulated crash"):
        save({"w": np.ones(100), "v": np.ones(5), "step": 2}, path)
    assert path.read_bytes() == old_bytes
    assert load(path)["step"] == 1
    assert os.listdir(tmp_path) == ["c.npz"]  # the temporary file was removed


def test_interrupted_first_save_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(serialization, "_write_entry", _failing_after_first_entry(OSError))
    with pytest.raises(OSError):
        save({"a": np.ones(2), "b": np.ones(2)}, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such directory"):
        save({"w": np.ones(1)}, tmp_path / "missing" / "c.npz")


# ---------------------------------------------------------------------------- save errors

@pytest.mark.parametrize("obj, message", [
    ({"w": np.array([{"a": 1}], dtype=object)}, r"'w'.*dtype object.*pickle"),
    ({"model": {"w": {1, 2}}}, r"cannot save a set at 'model/w'"),
    ({"f": lambda: 0}, r"cannot save a function at 'f'"),
    ({(1, 2): np.ones(1)}, r"dict keys must be str or int, got \(1, 2\)"),
    (nn.Linear(2, 2), r"cannot save a Linear at 'the top level'.*save\(x.state_dict\(\), path\)"),
    ({"opt": optim.SGD([nn.Parameter(np.ones(1))], lr=0.1)},
     r"cannot save a SGD at 'opt'.*x.load_state_dict\(load\(path\)\)"),
])
def test_save_rejects_what_it_cannot_write_without_pickle(tmp_path, obj, message):
    with pytest.raises(TypeError, match=message):
        save(obj, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------- load errors

def test_missing_file(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        load(path)


@pytest.fixture
def good_bytes(tmp_path):
    path = tmp_path / "good.npz"
    save({"w": np.arange(500.0), "b": np.ones((20, 20)), "step": 7}, path)
    return path.read_bytes()


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.2, 0.5, 0.8, 0.99])
def test_truncated_file(tmp_path, good_bytes, fraction):
    path = tmp_path / "cut.npz"
    path.write_bytes(good_bytes[:int(len(good_bytes) * fraction)])
    with pytest.raises(ValueError, match=INVALID):
        load(path)


def test_corrupted_array_data(tmp_path, good_bytes):
    data = bytearray(good_bytes)
    data[300:310] = b"garbage!!!"  # inside the first array: the CRC check catches it
    path = tmp_path / "bad.npz"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=INVALID + r".*'w.npy'"):
        load(path)


@pytest.mark.parametrize("content, hint", [
    (b"this is not a checkpoint", "File is not a zip file"),
    (b"", "empty"),
    (pickle.dumps({"w": [1.0]}), "looks like a pickle"),
])
def test_garbage_files(tmp_path, content, hint):
    path = tmp_path / "x.npz"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=f"{INVALID}.*{hint}"):
        load(path)


def test_npy_file_is_not_a_checkpoint(tmp_path):
    np.save(tmp_path / "a.npy", np.ones(3))
    with pytest.raises(ValueError, match="single .npy array"):
        load(tmp_path / "a.npy")


def test_pickled_object_array_is_refused(tmp_path, monkeypatch):
    np.savez(tmp_path / "obj.npz", w=np.ones(2), evil=np.array([{"x": 1}], dtype=object),
             allow_pickle=True)
    unpickled = []
    monkeypatch.setattr(pickle, "load", lambda *a, **k: unpickled.append(1))
    with pytest.raises(ValueError, match=r"'evil.npy' holds a pickled object array.*arbitrary "
                                         r"code"):
        load(tmp_path / "obj.npz")
    assert not unpickled


def test_torch_save_file_is_refused(tmp_path):
    """torch.save writes a zip whose main entry is a pickle (``archive/data.pkl``)."""
    path = tmp_path / "model.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
        zf.writestr("archive/data/0", b"\0" * 8)
    with pytest.raises(ValueError, match=f"{INVALID}.*pickled data.*numpy.savez"):
        load(path)


def test_zip_with_other_files_is_refused(tmp_path):
    path = tmp_path / "x.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match=f"{INVALID}.*'readme.txt' is not a NumPy array"):
        load(path)


@pytest.mark.parametrize("record, message", [
    ("not json", "not a structure record"),
    ('{"format": "something else"}', "not a structure record"),
    ('{"format": "tinygrad_rnn.checkpoint", "version": 99, "root": null}',
     "version 99 is not supported"),
    ('{"format": "tinygrad_rnn.checkpoint", "version": 1, "root": {"array": "gone"}}',
     "'gone' it refers to is missing"),
    ('{"format": "tinygrad_rnn.checkpoint", "version": 1, "root": {"what": 1}}',
     "unknown item"),
    ('{"format": "tinygrad_rnn.checkpoint", "version": 1, "root": {"dict": 5}}', "damaged"),
])
def test_damaged_structure_record(tmp_path, record, message):
    path = tmp_path / "c.npz"
    np.savez(path, **{STRUCTURE_KEY: np.array(record)})
    with pytest.raises(ValueError, match=f"{INVALID}.*{message}"):
        load(path)


def test_checkpoints_move_between_backends(requires_gpu, tmp_path):
    """Saved from CuPy tensors, loaded on NumPy (and back): files are host arrays."""
    backend.use("cupy")
    save({"w": Tensor([1.0, 2.0]), "step": 3}, tmp_path / "gpu.npz")
    on_gpu = load(tmp_path / "gpu.npz")
    assert on_gpu["w"].backend == "cupy"
    backend.use("numpy")
    on_cpu = load(tmp_path / "gpu.npz")
    assert on_cpu["w"].backend == "numpy" and on_cpu["step"] == 3
    np.testing.assert_array_equal(on_cpu["w"].numpy(), on_gpu["w"].numpy())
