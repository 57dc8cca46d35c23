"""``save`` / ``load`` against what cannot round-trip and against hostile or odd files: each
is a clear ``ValueError``/``TypeError``/``OSError`` naming the problem, never a
``MemoryError``, a ``RecursionError``, a hang, or a key that loads back different."""
from __future__ import annotations

import json
import os
import struct
import zipfile

import numpy as np
import pytest

from tinygrad_rnn import Tensor
from tinygrad_rnn.serialization import (
    MAX_DEPTH,
    MAX_KEY_BYTES,
    STRUCTURE_KEY,
    load,
    save,
    stale_temporary_files,
)

INVALID = "is not a valid tinygrad_rnn checkpoint"


# ------------------------------------------------------------------------- keys on save

@pytest.mark.parametrize("suffix", [".npz", ".safetensors"])
@pytest.mark.parametrize("key, words", [
    ("a\x00b", "NUL byte"),
    ("bad\udc80", "not valid Unicode"),
    ("k" * (MAX_KEY_BYTES + 1), "at most"),
])
@pytest.mark.parametrize("nested", [False, True])
def test_save_refuses_keys_that_cannot_round_trip(tmp_path, suffix, key, words, nested):
    if suffix == ".safetensors":
        pytest.importorskip("safetensors")
    obj = {key: np.ones(2)}
    obj = {"model": obj, "step": 1} if nested else obj
    path = tmp_path / ("c" + suffix)
    with pytest.raises(ValueError, match=words):
        save(obj, path)
    assert not path.exists() and os.listdir(tmp_path) == []


def test_the_longest_allowed_key_round_trips(tmp_path):
    key = "é" * (MAX_KEY_BYTES // 2)            # 2 bytes each in UTF-8
    save({key: np.arange(3.0)}, tmp_path / "c.npz")
    assert list(load(tmp_path / "c.npz")) == [key]


def nested(depth: int):
    obj: object = np.ones(1)
    for _ in range(depth):
        obj = {"a": obj}
    return obj


def test_save_refuses_nesting_beyond_the_limit(tmp_path):
    save(nested(MAX_DEPTH - 1), tmp_path / "ok.npz")
    assert load(tmp_path / "ok.npz")["a"]["a"]
    with pytest.raises(ValueError, match="nests deeper"):
        save(nested(MAX_DEPTH + 5), tmp_path / "deep.npz")


# --------------------------------------------------------------------- hostile files

def npy_header(shape, dtype="<f8") -> bytes:
    header = repr({"descr": dtype, "fortran_order": False, "shape": shape}).encode()
    header += b" " * (63 - (len(header) + 10) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


@pytest.mark.parametrize("shape", [(10 ** 12,), (10 ** 6, 10 ** 6), (2 ** 40, 2 ** 40, 2 ** 40)])
def test_header_claiming_more_than_the_file_holds(tmp_path, shape):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("w.npy", npy_header(shape) + b"\x00" * 64)
    with pytest.raises(ValueError, match=r"claims shape .* but it holds 64 bytes"):
        load(path)


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 300, 600])
def test_structure_record_nested_too_deep(tmp_path, depth):
    node = '{"list": [' * depth + '{"value": 1}' + "]}" * depth
    record = '{"format": "tinygrad_rnn.checkpoint", "version": 1, "root": ' + node + "}"
    np.savez(tmp_path / "deep.npz", **{STRUCTURE_KEY: np.array(record)})
    with pytest.raises(ValueError, match=INVALID):
        load(tmp_path / "deep.npz")


def test_structure_record_nested_beyond_json_recursion(tmp_path):
    record = "[" * 100_000 + "]" * 100_000
    np.savez(tmp_path / "deep.npz", **{STRUCTURE_KEY: np.array(record)})
    with pytest.raises(ValueError, match=INVALID):
        load(tmp_path / "deep.npz")


def test_safetensors_header_claiming_too_much(tmp_path):
    pytest.importorskip("safetensors")
    claim = {"dtype": "F64", "shape": [10 ** 12], "data_offsets": [0, 8 * 10 ** 12]}
    header = json.dumps({"w": claim})
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header.encode() + b"\x00" * 8)
    with pytest.raises(ValueError, match="not a valid .safetensors file"):
        load(path)


# ---------------------------------------------------------------------------- odd paths

def test_load_of_a_directory_says_so(tmp_path):
    with pytest.raises(IsADirectoryError, match="Is a directory"):
        load(tmp_path)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_load_of_a_fifo_is_refused_without_blocking(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ValueError, match="not a regular file"):
        load(tmp_path / "pipe")


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero here")
def test_load_of_a_device_is_refused():
    with pytest.raises(ValueError, match="not a regular file"):
        load("/dev/zero")


def test_save_onto_a_directory_says_so(tmp_path):
    (tmp_path / "c.npz").mkdir()
    with pytest.raises(IsADirectoryError):
        save({"w": np.ones(1)}, tmp_path / "c.npz")


def test_stale_temporary_files_are_only_those_of_that_path(tmp_path):
    ours = [tmp_path / ".c.npz.0123456789ab.tmp", tmp_path / ".c.npz.ffffffffffff.tmp"]
    others = [tmp_path / ".d.npz.0123456789ab.tmp", tmp_path / ".c.npz.xyz.tmp",
              tmp_path / "c.npz", tmp_path / ".c.npz.0123456789ab.tmp.keep"]
    for p in ours + others:
        p.write_bytes(b"")
    assert stale_temporary_files(tmp_path / "c.npz") == [str(p) for p in ours]


# ----------------------------------------------------------------------------- torch

class FakeTorchTensor:
    """Has the module name of a torch tensor; NumPy could convert it (it has __array__)."""
    __module__ = "torch"

    def __array__(self, dtype=None, copy=None):
        return np.ones(2)


@pytest.mark.parametrize("make", [lambda t: {"w": t}, lambda t: {"model": {"w": t}, "step": 1}])
def test_save_of_a_torch_tensor_says_how_to_convert(tmp_path, make):
    with pytest.raises(TypeError, match=r"PyTorch.*\.numpy\(\)"):
        save(make(FakeTorchTensor()), tmp_path / "c.npz")


def test_tensor_from_a_torch_tensor_says_how_to_convert():
    with pytest.raises(TypeError, match=r"PyTorch.*\.numpy\(\)"):
        Tensor(FakeTorchTensor())


def test_safetensors_without_the_package_says_how_to_install(tmp_path, monkeypatch):
    import sys
    for name in ("safetensors", "safetensors.numpy"):
        monkeypatch.setitem(sys.modules, name, None)     # as if it were not installed
    with pytest.raises(ImportError, match=r'pip install "tinygrad-rnn\[safetensors\]"'):
        save({"w": np.ones(2)}, tmp_path / "m.safetensors")
    assert os.listdir(tmp_path) == []
