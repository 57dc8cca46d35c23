"""``save`` / ``load``: checkpoints as ``.npz`` files, never pickle.

Loading a pickle can run arbitrary code, so checkpoints are plain NumPy archives: a zip file
with one ``.npy`` array per entry (what ``numpy.savez`` writes), readable with
``numpy.load(path)`` anywhere, and read back here with ``allow_pickle=False``.

Format
------
* A flat state dict ``{str: Tensor | array}`` (what ``Module.state_dict()`` returns) is
  written as exactly that: one entry per key, nothing else. Any NumPy or PyTorch user can
  read it, and an ``np.savez`` file exported from PyTorch loads as such a dict.
* Anything else (nested dicts, lists, tuples, int keys, Python numbers, strings, None), e.g.
  ``{"model": model.state_dict(), "optimizer": opt.state_dict(), "step": 10}``, gets one more
  entry, ``__tinygrad_rnn__``: a JSON record (a 0-d string array) of the structure, with the
  Python scalars stored in it (so ints stay ints and floats stay floats, exactly) and each
  array referred to by its entry name. Entry names are the keys along the way joined by
  ``/``: ``model/rnn.weight_ih_l0``, ``optimizer/state/0/exp_avg``.

``load`` gives arrays back as Tensors on the active backend (like ``torch.load``); arrays that
are not numbers (strings) stay host NumPy arrays.

Writing is atomic: the archive is written to a temporary file in the same directory and then
moved over ``path`` with ``os.replace``, so an interrupted save leaves the previous
checkpoint intact, never a half-written one.
"""
from __future__ import annotations

import errno
import json
import os
import uuid
import zipfile
import zlib
from typing import Any, Dict, Union

from . import backend
from .tensor import Tensor

np = backend.np  # host NumPy: checkpoints are host files

PathT = Union[str, "os.PathLike[str]"]

STRUCTURE_KEY = "__tinygrad_rnn__"
FORMAT_NAME = "tinygrad_rnn.checkpoint"
FORMAT_VERSION = 1
SEPARATOR = "/"

#: Errors from a damaged archive; they become "not a valid checkpoint" errors.
_DAMAGED = (ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)
_NPY_HEADER = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


# ---------------------------------------------------------------------------------- save

def save(obj: Any, path: PathT) -> None:
    """Write ``obj`` (a state dict, or nested dicts/lists/tuples of Tensors, arrays,
    numbers, strings and None; dict keys str or int) to ``path`` as an ``.npz`` archive,
    atomically. ``path`` is used as given (no ``.npz`` is appended). Tensors are saved as
    their data (host copies; ``requires_grad`` is not kept); NumPy scalars count as 0-d
    arrays, so they load back as 0-d Tensors."""
    arrays: Dict[str, Any] = {}
    if _is_flat_state_dict(obj):
        for key, value in obj.items():
            arrays[key] = _host_array(value, key)
    else:
        taken = {STRUCTURE_KEY}
        root = _encode(obj, (), arrays, taken)
        record = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root}
        arrays[STRUCTURE_KEY] = np.array(json.dumps(record))
    _write_atomic(os.fspath(path), arrays)


def _is_flat_state_dict(obj) -> bool:
    return (isinstance(obj, dict) and STRUCTURE_KEY not in obj
            and all(isinstance(k, str) for k in obj) and all(_is_array(v) for v in obj.values()))


def _is_array(value) -> bool:
    return isinstance(value, (Tensor, np.generic)) or backend.is_array(value)


def _host_array(value, where: str):
    """A host NumPy copy of a Tensor / NumPy / CuPy array; refuses object arrays."""
    array = value.numpy() if isinstance(value, Tensor) else backend.to_host(value)
    array = np.asarray(array)
    if array.dtype.hasobject:
        raise TypeError(f"save: cannot save the array at {where!r}: its dtype {array.dtype} "
                        "holds Python objects, which would need pickle (never used by "
                        "tinygrad_rnn); convert it to a numeric array")
    return array


def _encode(obj, path: tuple, arrays: dict, taken: set):
    """The JSON record of ``obj``; its arrays go into ``arrays`` under unique entry names."""
    where = SEPARATOR.join(map(str, path))
    if _is_array(obj):
        name = where or "root"
        base, n = name, 1
        while name in taken:  # e.g. {"a/b": x, "a": {"b": y}} both flatten to "a/b"
            name, n = f"{base}~{n}", n + 1
        taken.add(name)
        arrays[name] = _host_array(obj, where)
        return {"array": name}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, dict):
        for key in obj:
            if not isinstance(key, (str, int)):
                raise TypeError(f"save: dict keys must be str or int, got {key!r} "
                                f"({type(key).__name__}) at {where or 'the top level'!r}")
        return {"dict": [[k, _encode(v, path + (k,), arrays, taken)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        kind = "list" if isinstance(obj, list) else "tuple"
        return {kind: [_encode(v, path + (i,), arrays, taken) for i, v in enumerate(obj)]}
    raise TypeError(f"save: cannot save a {type(obj).__name__} at {where or 'the top level'!r}; "
                    "expected a Tensor, an array, a number, a string, None, or a dict, list or "
                    "tuple of those")


def _write_atomic(path: str, arrays: dict) -> None:
    """Write the archive next to ``path`` under a temporary name, then rename it over
    ``path``: a rename within one directory is atomic, so readers see the old file or the
    new one, never a partial one."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, "save: no such directory", directory)
    tmp = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open applies the umask, so the checkpoint gets the usual permissions (mkstemp's
    # would be 0600); O_EXCL never clobbers another file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            _write_npz(file, arrays)
            file.flush()
            os.fsync(file.fileno())  # the data is on disk before the rename makes it visible
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _write_npz(file, arrays: dict) -> None:
    """The archive ``numpy.savez`` writes, with a fixed timestamp so that saving the same
    thing twice gives identical bytes."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name, array in arrays.items():
            _write_entry(zf, name, array)


def _write_entry(zf: zipfile.ZipFile, name: str, array) -> None:
    info = zipfile.ZipInfo(name + ".npy", date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16  # rw-r--r-- for anyone who unzips it
    with zf.open(info, "w", force_zip64=True) as fid:  # zip64 always, as numpy.savez does
        np.lib.format.write_array(fid, array, allow_pickle=False)


# ---------------------------------------------------------------------------------- load

def load(path: PathT) -> Any:
    """Read a checkpoint written by :func:`save`, or any ``.npz`` of numeric arrays (e.g.
    ``np.savez(path, **{k: v.numpy() for k, v in torch_model.state_dict().items()})``).

    Returns what was saved: arrays as Tensors on the active backend, Python scalars,
    strings, None, dicts, lists and tuples as they were. A plain ``.npz`` gives a flat
    ``{name: Tensor}`` dict in the file's order. Never unpickles anything.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(errno.ENOENT, "No such file or directory (no checkpoint "
                                "there)", path)
    arrays = _read_npz(path)
    record = arrays.pop(STRUCTURE_KEY, None)
    if record is None:
        return {name: _to_value(array) for name, array in arrays.items()}
    root = _parse_record(record, path)
    try:
        return _decode(root, arrays, path)
    except (TypeError, KeyError, AttributeError) as exc:  # a malformed record
        raise _invalid(path, f"its structure record is damaged ({exc!r})") from None


def _invalid(path: str, why: str) -> ValueError:
    return ValueError(f"{path!r} is not a valid tinygrad_rnn checkpoint (.npz): {why}")


def _read_npz(path: str) -> Dict[str, Any]:
    try:
        zf = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise _invalid(path, f"{exc}{_guess_kind(path)}") from None
    with zf:
        members = [m for m in zf.namelist() if not m.endswith("/")]
        if any(m.endswith(".pkl") for m in members):
            raise _invalid(path, "it holds pickled data (a file written by torch.save?); "
                                 "tinygrad_rnn never loads pickles. Export the state dict with "
                                 "numpy.savez(path, **{k: v.detach().numpy() for k, v in "
                                 "model.state_dict().items()})")
        for member in members:
            if not member.endswith(".npy"):
                raise _invalid(path, f"entry {member!r} is not a NumPy array (.npy)")
        return {m[:-len(".npy")]: _read_entry(zf, m, path) for m in members}


def _read_entry(zf: zipfile.ZipFile, member: str, path: str):
    """One ``.npy`` entry as a host array; object (pickled) arrays are refused before any
    of their bytes are interpreted."""
    try:
        with zf.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            read_header = _NPY_HEADER.get(version)
            dtype = read_header(fp)[2] if read_header else None
        if dtype is None or not dtype.hasobject:
            with zf.open(member) as fp:
                return np.lib.format.read_array(fp, allow_pickle=False)
    except _DAMAGED as exc:
        raise _invalid(path, f"entry {member!r} could not be read: {exc}") from None
    raise ValueError(
        f"{path!r}: entry {member!r} holds a pickled object array (dtype {dtype}); "
        "tinygrad_rnn refuses to load it, because unpickling can run arbitrary code. "
        "Save numeric arrays only.")


def _guess_kind(path: str) -> str:
    """A hint about what a non-zip file is, for the error message."""
    with open(path, "rb") as f:
        head = f.read(8)
    if not head:
        return " (the file is empty)"
    if head.startswith(b"\x93NUMPY"):
        return " (it is a single .npy array, not an .npz archive; read it with numpy.load)"
    if head.startswith(b"PK"):
        return " (it starts like a zip archive: the file is probably truncated or damaged)"
    if head[:1] == b"\x80":
        return (" (it looks like a pickle, e.g. from an old torch.save; tinygrad_rnn never "
                "loads pickles, because unpickling can run arbitrary code)")
    return ""


def _parse_record(record, path: str) -> Any:
    try:
        parsed = json.loads(str(record.item()))
        ok = parsed.get("format") == FORMAT_NAME
    except (ValueError, AttributeError) as exc:
        raise _invalid(path, f"its {STRUCTURE_KEY} entry is not a structure record ({exc})") \
            from None
    if not ok:
        raise _invalid(path, f"its {STRUCTURE_KEY} entry is not a structure record")
    if parsed.get("version") != FORMAT_VERSION:
        raise _invalid(path, f"format version {parsed.get('version')!r} is not supported by "
                             f"this tinygrad_rnn (it reads version {FORMAT_VERSION}); upgrade "
                             "tinygrad_rnn")
    return parsed.get("root")


def _decode(node, arrays: dict, path: str) -> Any:
    """Rebuild the saved object from its JSON record (see :func:`_encode`)."""
    kind = next(iter(node)) if isinstance(node, dict) and len(node) == 1 else None
    if kind == "value":
        return node["value"]
    if kind == "array":
        if node["array"] not in arrays:
            raise _invalid(path, f"the entry {node['array']!r} it refers to is missing")
        return _to_value(arrays[node["array"]])
    if kind == "dict":
        return {key: _decode(child, arrays, path) for key, child in node["dict"]}
    if kind == "list":
        return [_decode(child, arrays, path) for child in node["list"]]
    if kind == "tuple":
        return tuple(_decode(child, arrays, path) for child in node["tuple"])
    raise _invalid(path, f"unknown item {str(node)[:80]!r} in its structure record")


def _to_value(array):
    """A loaded array as a Tensor on the active backend (numbers and bools); other arrays
    (strings) have no Tensor form and stay host NumPy arrays."""
    if array.dtype.kind not in "biufc":
        return array
    return Tensor._wrap(backend.to_backend(array))  # a fresh array: no need to copy it again
