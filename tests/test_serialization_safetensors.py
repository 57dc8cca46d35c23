"""The ``.safetensors`` checkpoint format: round trips, the choice of format, and weights
saved from PyTorch with ``safetensors.torch.save_file`` (recorded by
``tests/fixtures/record_safetensors.py``) loading into the matching module and giving
PyTorch's outputs."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import tinygrad_rnn as tg
from tinygrad_rnn import Tensor, nn
from tinygrad_rnn.serialization import load, save

safetensors_numpy = pytest.importorskip("safetensors.numpy")

FIXTURES = Path(__file__).parent / "fixtures" / "safetensors"


def flat_state():
    rng = np.random.default_rng(3)
    return {"rnn.weight_ih_l0": rng.standard_normal((4, 3)).astype(np.float32),
            "rnn.bias": rng.standard_normal(4),
            "count": np.array([1, -2, 3], dtype=np.int64),
            "mask": np.array([True, False]),
            "scalar": np.array(2.5, dtype=np.float32),
            "empty": np.zeros((0, 3), dtype=np.float64),
            "half": np.array([1.5, -2.0], dtype=np.float16),
            "transposed": rng.standard_normal((3, 2)).T}     # not C-contiguous


def assert_same(loaded: dict, original: dict):
    assert sorted(loaded) == sorted(original)
    for key, value in original.items():
        got = loaded[key]
        assert isinstance(got, Tensor), key
        assert got.dtype == value.dtype and got.shape == value.shape, key
        np.testing.assert_array_equal(got.numpy(), value)


@pytest.mark.parametrize("how", ["suffix", "argument"])
def test_flat_state_dict_round_trip_is_a_plain_safetensors_file(tmp_path, how):
    sd = flat_state()
    path = tmp_path / ("m.safetensors" if how == "suffix" else "m.bin")
    save(sd, path, **({} if how == "suffix" else {"format": "safetensors"}))
    assert_same(load(path), sd)
    plain = safetensors_numpy.load_file(str(path))   # readable by the safetensors package
    assert sorted(plain) == sorted(sd)
    np.testing.assert_array_equal(plain["rnn.bias"], sd["rnn.bias"])


@pytest.mark.parametrize("name, keep", [
    ("cut.safetensors", 1), ("cut.safetensors", 6), ("cut.safetensors", 0.5),
    ("cut.safetensors", 0.99), ("cut.bin", 12), ("cut.bin", 0.5)])
def test_a_truncated_safetensors_file_is_said_to_be_one(tmp_path, name, keep):
    # Cut before the end of its header, it used to be reported as a damaged .npz only.
    save(flat_state(), tmp_path / "good.safetensors")
    good = (tmp_path / "good.safetensors").read_bytes()
    path = tmp_path / name
    path.write_bytes(good[:keep if isinstance(keep, int) else int(len(good) * keep)])
    with pytest.raises(ValueError, match=r"say \.safetensors.*truncated or damaged"
                                         r"|is not a valid \.safetensors file"):
        load(path)


def test_a_bfloat16_file_is_valid_but_says_how_to_convert(tmp_path):
    # What safetensors.torch.save_file writes for a bfloat16 model (written by hand here).
    header = json.dumps({"w": {"dtype": "BF16", "shape": [2], "data_offsets": [0, 4]}})
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header.encode() + b"\x80\x3f" * 2)
    with pytest.raises(ValueError, match=r"holds bfloat16 tensors.*v\.float\(\)"):
        load(path)


def test_npz_stays_the_default_and_can_be_forced(tmp_path):
    save({"w": np.ones(2)}, tmp_path / "a.ckpt")
    save({"w": np.ones(2)}, tmp_path / "b.safetensors", format="npz")
    for name in ("a.ckpt", "b.safetensors"):
        assert (tmp_path / name).read_bytes()[:2] == b"PK"    # a zip archive
        np.testing.assert_array_equal(load(tmp_path / name)["w"].numpy(), np.ones(2))


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown format 'pt'.*'npz', 'safetensors'"):
        save({"w": np.ones(2)}, tmp_path / "m", format="pt")


def test_nested_checkpoint_round_trips_with_its_structure_in_the_metadata(tmp_path):
    ckpt = {"model": {"w": np.arange(6.0).reshape(2, 3)}, "step": 7, "lr": 0.001,
            "name": "run", "betas": (0.9, 0.999), "history": [np.ones(2), None]}
    save(ckpt, tmp_path / "c.safetensors")
    got = load(tmp_path / "c.safetensors")
    assert got["step"] == 7 and got["lr"] == 0.001 and got["name"] == "run"
    assert got["betas"] == (0.9, 0.999) and got["history"][1] is None
    np.testing.assert_array_equal(got["model"]["w"].numpy(), ckpt["model"]["w"])
    np.testing.assert_array_equal(got["history"][0].numpy(), np.ones(2))
    from safetensors import safe_open
    with safe_open(str(tmp_path / "c.safetensors"), framework="np") as f:
        assert json.loads(f.metadata()["__tinygrad_rnn__"])["format"] == "tinygrad_rnn.checkpoint"


def test_string_arrays_need_the_npz_format(tmp_path):
    with pytest.raises(TypeError, match="numbers and booleans only"):
        save({"meta": np.array("text"), "step": 1}, tmp_path / "c.safetensors")


def test_training_optimizer_state_round_trips(tmp_path):
    layer = nn.Linear(3, 2)
    opt = tg.optim.Adam(layer.parameters(), lr=0.01)
    layer(Tensor(np.ones((1, 3), dtype=np.float32))).sum().backward()
    opt.step()
    save({"model": layer.state_dict(), "optimizer": opt.state_dict()}, tmp_path / "c.safetensors")
    got = load(tmp_path / "c.safetensors")
    other = nn.Linear(3, 2)
    other.load_state_dict(got["model"])
    np.testing.assert_array_equal(other.weight.numpy(), layer.weight.numpy())
    tg.optim.Adam(other.parameters(), lr=0.01).load_state_dict(got["optimizer"])


# --------------------------------------------------------------- weights from PyTorch

def model_for(meta: dict) -> nn.Module:
    dtype = meta["dtype"]
    model = nn.Module()
    cell = getattr(nn, meta["cell"])
    model.rnn = cell(meta["input_size"], meta["hidden_size"], num_layers=meta["num_layers"],
                     bidirectional=meta["bidirectional"], batch_first=True, dtype=dtype)
    width = meta["hidden_size"] * (2 if meta["bidirectional"] else 1)
    model.fc = nn.Linear(width, meta["out_features"], dtype=dtype)
    return model


@pytest.mark.parametrize("case", ["lstm_fc", "gru_fc"])
def test_pytorch_safetensors_file_loads_into_the_matching_module(case):
    io = np.load(FIXTURES / f"{case}_io.npz", allow_pickle=False)
    meta = json.loads(io["meta"].item())
    state = load(FIXTURES / meta["state_file"])
    assert sorted(state) == sorted(meta["state_keys"])
    model = model_for(meta)
    model.load_state_dict(state)
    x = Tensor(io["x"])
    with tg.no_grad():
        output, state_n = model.rnn(x)
        fc_output = model.fc(output)
    h_n = state_n[0] if isinstance(state_n, tuple) else state_n
    tol = dict(rtol=1e-12, atol=1e-12) if meta["dtype"] == "float64" else \
        dict(rtol=1e-5, atol=1e-6)
    assert output.dtype == np.dtype(meta["dtype"])
    np.testing.assert_allclose(output.numpy(), io["rnn_output"], **tol)
    np.testing.assert_allclose(h_n.numpy(), io["rnn_h_n"], **tol)
    np.testing.assert_allclose(fc_output.numpy(), io["fc_output"], **tol)


def test_our_state_dict_written_as_safetensors_has_pytorch_names_and_shapes(tmp_path):
    io = np.load(FIXTURES / "lstm_fc_io.npz", allow_pickle=False)
    meta = json.loads(io["meta"].item())
    model = model_for(meta)
    save(model.state_dict(), tmp_path / "ours.safetensors")
    ours = safetensors_numpy.load_file(str(tmp_path / "ours.safetensors"))
    theirs = safetensors_numpy.load_file(str(FIXTURES / meta["state_file"]))
    assert {k: (v.shape, v.dtype) for k, v in ours.items()} == \
        {k: (v.shape, v.dtype) for k, v in theirs.items()}
