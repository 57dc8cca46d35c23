"""``save`` / ``load``: checkpoints as ``.npz`` or ``.safetensors`` files, never pickle.

Loading a pickle can run arbitrary code, so checkpoints are plain NumPy archives: a zip file
with one ``.npy`` array per entry (what ``numpy.savez`` writes), readable with
``numpy.load(path)`` anywhere, and read back here with ``allow_pickle=False``. The second
format is safetensors (chosen by ``format="safetensors"`` or a ``.safetensors`` suffix): the
format PyTorch and Hugging Face users share weights in, so a file written by
``safetensors.torch.save_file(torch_model.state_dict(), path)`` loads here, and our state
dicts load into PyTorch with ``safetensors.torch.load_file``. It needs the ``safetensors``
package (``pip install "tinygrad-rnn[safetensors]"``). ``load``
tells the two formats apart by their first bytes, whatever the file is called.

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
  ``/``: ``model/rnn.weight_ih_l0``, ``optimizer/state/0/exp_avg``. In a ``.safetensors``
  file the same record is the metadata entry ``__tinygrad_rnn__``.

``load`` gives arrays back as Tensors on the active backend (like ``torch.load``); arrays that
are not numbers (strings) stay host NumPy arrays.

Writing is atomic: the archive is written to a temporary file in the same directory and then
moved over ``path`` with ``os.replace``, so an interrupted save leaves the previous
checkpoint intact, never a half-written one (a process killed in between can leave the
temporary file; :func:`stale_temporary_files` finds such leftovers).

Refused, with a ``ValueError`` or ``TypeError`` saying why: keys a file cannot give back
(containing a NUL byte, not encodable as UTF-8, or longer than :data:`MAX_KEY_BYTES`),
nesting deeper than :data:`MAX_DEPTH`, and, on loading, files whose headers claim more data
than they hold (no gigantic allocation is attempted) or whose structure nests too deeply.
"""
from __future__ import annotations

import errno
import json
import os
import re
import stat
import uuid
import zipfile
import zlib
from typing import Any, Callable, Dict, Union

from . import backend
from .tensor import Tensor

np = backend.np  # host NumPy: checkpoints are host files

PathT = Union[str, "os.PathLike[str]"]

STRUCTURE_KEY = "__tinygrad_rnn__"
FORMAT_NAME = "tinygrad_rnn.checkpoint"
FORMAT_VERSION = 1
SEPARATOR = "/"
FORMATS = ("npz", "safetensors")
SAFETENSORS_HINT = 'pip install "tinygrad-rnn[safetensors]" (or pip install safetensors)'
#: Deepest nesting of dicts/lists/tuples saved or loaded (a training checkpoint uses 4).
MAX_DEPTH = 64
#: Longest key (entry name, in UTF-8 bytes) a zip archive can store.
MAX_KEY_BYTES = 0xFFFF - len(".npy")

#: Errors from a damaged archive; they become "not a valid checkpoint" errors.
_DAMAGED = (ValueError, EOFError, zipfile.BadZipFile, zlib.error, NotImplementedError)
_NPY_HEADER = {(1, 0): np.lib.format.read_array_header_1_0,
               (2, 0): np.lib.format.read_array_header_2_0}


# ---------------------------------------------------------------------------------- save

def save(obj: Any, path: PathT, format: str | None = None) -> None:
    """Write ``obj`` (a state dict, or nested dicts/lists/tuples of Tensors, arrays,
    numbers, strings and None; dict keys str or int) to ``path``, atomically.

    ``format``: ``"npz"`` or ``"safetensors"``; by default ``"safetensors"`` when ``path``
    ends in ``.safetensors``, else ``"npz"``. ``path`` is used as given (no suffix is
    appended). Tensors are saved as their data (host copies; ``requires_grad`` is not kept);
    NumPy scalars count as 0-d arrays, so they load back as 0-d Tensors."""
    path = os.fspath(path)
    format = _format_for(path, format)
    arrays: Dict[str, Any] = {}
    record = None
    if _is_flat_state_dict(obj):
        for key, value in obj.items():
            arrays[key] = _host_array(value, key)
    else:
        taken = {STRUCTURE_KEY}
        root = _encode(obj, (), arrays, taken)
        record = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root})
    for name in arrays:
        _check_entry_name(name)
    if format == "safetensors":
        blob = _safetensors_bytes(arrays, record)
        _write_atomic(path, lambda file: file.write(blob))
    else:
        if record is not None:
            arrays[STRUCTURE_KEY] = np.array(record)
        _write_atomic(path, lambda file: _write_npz(file, arrays))


def _format_for(path: str, format: str | None) -> str:
    if format is None:
        return "safetensors" if path.lower().endswith(".safetensors") else "npz"
    if format not in FORMATS:
        raise ValueError(f"save: unknown format {format!r}; expected one of "
                         + ", ".join(repr(f) for f in FORMATS))
    return format


def _check_entry_name(name: str) -> None:
    """Refuse a key that would not come back as the same string."""
    if "\x00" in name:
        raise ValueError(f"save: the key {name!r} contains a NUL byte, which archive entry "
                         "names cannot hold (it would load back cut short)")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValueError(f"save: the key {name!r} is not valid Unicode text (a lone "
                         "surrogate); it cannot be written as a file entry name") from None
    if size > MAX_KEY_BYTES:
        raise ValueError(f"save: the key {name[:40]!r}... is {size} bytes long; entry names "
                         f"can hold at most {MAX_KEY_BYTES} bytes")


def _is_flat_state_dict(obj) -> bool:
    return (isinstance(obj, dict) and STRUCTURE_KEY not in obj
            and all(isinstance(k, str) for k in obj) and all(_is_array(v) for v in obj.values()))


def _is_array(value) -> bool:
    return isinstance(value, (Tensor, np.generic)) or backend.is_array(value)


def _host_array(value, where: str):
    """A host NumPy copy of a Tensor / NumPy / CuPy array; refuses object arrays."""
    backend.refuse_torch(value, f"save: the value at {where!r}")
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
    if len(path) > MAX_DEPTH:
        raise ValueError(f"save: the object nests deeper than {MAX_DEPTH} levels (at "
                         f"{where[:80]!r}...); flatten it (or check it does not contain itself)")
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
    backend.refuse_torch(obj, f"save: the value at {where or 'the top level'!r}")
    # torch.save(model, path) habit: a model, optimizer or scheduler is saved by its state.
    hint = (" (save its state instead: save(x.state_dict(), path), then "
            "x.load_state_dict(load(path)))" if hasattr(obj, "state_dict") else "")
    raise TypeError(f"save: cannot save a {type(obj).__name__} at {where or 'the top level'!r}; "
                    "expected a Tensor, an array, a number, a string, None, or a dict, list or "
                    "tuple of those" + hint)


def temporary_name(path: str) -> str:
    """A fresh temporary file name next to ``path``, as :func:`save` uses while writing."""
    directory, base = os.path.split(os.path.abspath(path))
    return os.path.join(directory, f".{base}.{uuid.uuid4().hex[:12]}.tmp")


def stale_temporary_files(path: PathT) -> list:
    """Temporary files of saves to ``path`` that never finished (their process was killed
    between writing and renaming). Only call this while no other process can be saving to
    ``path`` (e.g. while holding :class:`tinygrad_rnn.rundir.CheckpointLock`)."""
    directory, base = os.path.split(os.path.abspath(os.fspath(path)))
    pattern = re.compile(re.escape(f".{base}.") + r"[0-9a-f]{12}\.tmp")
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    return [os.path.join(directory, n) for n in sorted(names) if pattern.fullmatch(n)]


def _write_atomic(path: str, write: Callable[[Any], Any]) -> None:
    """Call ``write(file)`` on a temporary file next to ``path``, then rename it over
    ``path``: a rename within one directory is atomic, so readers see the old file or the
    new one, never a partial one."""
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(errno.ENOENT, "save: no such directory", directory)
    if os.path.isdir(path):
        raise IsADirectoryError(errno.EISDIR, "save: the path is a directory", path)
    tmp = temporary_name(path)
    # os.open applies the umask, so the checkpoint gets the usual permissions (mkstemp's
    # would be 0600); O_EXCL never clobbers another file.
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            write(file)
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


def _safetensors():
    """The ``safetensors.numpy`` module, or an ``ImportError`` saying how to install it."""
    try:
        import safetensors.numpy
    except ImportError:
        raise ImportError(f"the safetensors format needs the safetensors package: "
                          f"{SAFETENSORS_HINT}") from None
    return safetensors.numpy


def _safetensors_bytes(arrays: dict, record: str | None) -> bytes:
    """The ``.safetensors`` file of ``arrays`` (the structure record, if any, as metadata)."""
    st = _safetensors()
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise TypeError(f"save: the array at {name!r} has dtype {array.dtype}; the "
                            "safetensors format holds numbers and booleans only (use the "
                            "npz format for it)")
    # (np.ascontiguousarray would turn 0-d arrays into 1-d ones)
    contiguous = {name: a if a.flags.c_contiguous else a.copy(order="C")
                  for name, a in arrays.items()}
    return st.save(contiguous, metadata=None if record is None else {STRUCTURE_KEY: record})


# ---------------------------------------------------------------------------------- load

def load(path: PathT) -> Any:
    """Read a checkpoint written by :func:`save`, any ``.npz`` of numeric arrays (e.g.
    ``np.savez(path, **{k: v.numpy() for k, v in torch_model.state_dict().items()})``), or
    any ``.safetensors`` file (e.g. ``safetensors.torch.save_file(model.state_dict(), path)``).

    Returns what was saved: arrays as Tensors on the active backend, Python scalars,
    strings, None, dicts, lists and tuples as they were. A plain ``.npz`` gives a flat
    ``{name: Tensor}`` dict in the file's order, a plain ``.safetensors`` file one in the
    order of its names. Never unpickles anything.
    """
    path = os.fspath(path)
    _check_readable(path)
    if _is_safetensors(path):
        arrays, record = _read_safetensors(path)
    else:
        arrays = _read_npz(path)
        record = arrays.pop(STRUCTURE_KEY, None)
        record = None if record is None else _record_text(record, path)
    if record is None:
        return {name: _to_value(array) for name, array in arrays.items()}
    root = _parse_record(record, path)
    try:
        return _decode(root, arrays, path, depth=0)
    except (TypeError, KeyError, AttributeError) as exc:  # a malformed record
        raise _invalid(path, f"its structure record is damaged ({exc!r})") from None


def _check_readable(path: str) -> None:
    """A missing file, a directory or a special file (FIFO, device), each said as such."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory (no checkpoint "
                                "there)", path) from None
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "Is a directory, not a checkpoint file", path)
    if not stat.S_ISREG(mode):
        raise ValueError(f"{path!r} is not a regular file (a FIFO, device or socket), so it "
                         "cannot be a checkpoint")


def _is_safetensors(path: str) -> bool:
    """A safetensors file starts with its header's length (8 bytes, little-endian, less than
    the file) and the header's ``{``. (A zip archive starts with ``PK``.)"""
    with open(path, "rb") as f:
        head = f.read(9)
    return (len(head) == 9 and head[8:9] == b"{"
            and int.from_bytes(head[:8], "little") < os.path.getsize(path))


def _read_safetensors(path: str) -> tuple:
    """``({name: host array}, structure record or None)`` of a ``.safetensors`` file."""
    _safetensors()
    from safetensors import safe_open
    try:
        with safe_open(path, framework="np") as f:
            metadata = f.metadata() or {}
            arrays = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as exc:   # SafetensorError: a damaged or hostile header
        if "bfloat16" in str(exc):  # a valid file NumPy has no dtype for
            raise ValueError(f"{path!r} holds bfloat16 tensors, which NumPy (and so "
                             "tinygrad_rnn) cannot represent; convert them in PyTorch before "
                             "saving, e.g. {k: v.float() for k, v in state_dict.items()}") \
                from None
        raise ValueError(f"{path!r} is not a valid .safetensors file: "
                         + " ".join(str(exc).split())) from None
    return arrays, metadata.get(STRUCTURE_KEY)


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
    """One ``.npy`` entry as a host array. Object (pickled) arrays are refused before any of
    their bytes are interpreted, and so is a header claiming more data than the entry holds
    (a damaged or hostile file must not make us allocate terabytes)."""
    try:
        with zf.open(member) as fp:
            version = np.lib.format.read_magic(fp)
            read_header = _NPY_HEADER.get(version)
            if read_header is None:
                raise ValueError(f"unsupported .npy format version {version}")
            shape, _, dtype = read_header(fp)
            data_bytes = zf.getinfo(member).file_size - fp.tell()
        claimed = _product(shape) * dtype.itemsize
        if claimed > data_bytes and not dtype.hasobject:
            raise ValueError(f"its header claims shape {shape} of {dtype} ({claimed} bytes), "
                             f"but it holds {data_bytes} bytes")
        if not dtype.hasobject:
            with zf.open(member) as fp:
                return np.lib.format.read_array(fp, allow_pickle=False)
    except _DAMAGED as exc:
        raise _invalid(path, f"entry {member!r} could not be read: {exc}") from None
    raise ValueError(
        f"{path!r}: entry {member!r} holds a pickled object array (dtype {dtype}); "
        "tinygrad_rnn refuses to load it, because unpickling can run arbitrary code. "
        "Save numeric arrays only.")


def _product(shape: tuple) -> int:
    """The number of elements, in Python ints (NumPy's would overflow for hostile shapes)."""
    n = 1
    for dim in shape:
        n *= int(dim)
    return n


def _guess_kind(path: str) -> str:
    """A hint about what a non-zip file is, for the error message."""
    with open(path, "rb") as f:
        head = f.read(9)
    if not head:
        return " (the file is empty)"
    if head.startswith(b"\x93NUMPY"):
        return " (it is a single .npy array, not an .npz archive; read it with numpy.load)"
    if head.startswith(b"PK"):
        return " (it starts like a zip archive: the file is probably truncated or damaged)"
    if head[:1] == b"\x80":
        return (" (it looks like a pickle, e.g. from an old torch.save; tinygrad_rnn never "
                "loads pickles, because unpickling can run arbitrary code)")
    if head[8:9] == b"{" or path.endswith(".safetensors"):
        return (" (its name or first bytes say .safetensors, but it is shorter than a "
                ".safetensors header: the file is probably truncated or damaged)")
    return ""


def _record_text(record, path: str) -> str:
    try:
        return str(record.item())
    except ValueError as exc:   # not a 0-d array
        raise _invalid(path, f"its {STRUCTURE_KEY} entry is not a structure record ({exc})") \
            from None


def _parse_record(record: str, path: str) -> Any:
    try:
        parsed = json.loads(record)
        ok = parsed.get("format") == FORMAT_NAME
    except RecursionError:     # far deeper than MAX_DEPTH: the JSON parser itself gave up
        raise _invalid(path, f"its structure nests deeper than {MAX_DEPTH} levels") from None
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


def _decode(node, arrays: dict, path: str, depth: int) -> Any:
    """Rebuild the saved object from its JSON record (see :func:`_encode`)."""
    if depth > MAX_DEPTH:
        raise _invalid(path, f"its structure nests deeper than {MAX_DEPTH} levels")
    kind = next(iter(node)) if isinstance(node, dict) and len(node) == 1 else None
    if kind == "value":
        return node["value"]
    if kind == "array":
        if node["array"] not in arrays:
            raise _invalid(path, f"the entry {node['array']!r} it refers to is missing")
        return _to_value(arrays[node["array"]])
    if kind == "dict":
        return {key: _decode(child, arrays, path, depth + 1) for key, child in node["dict"]}
    if kind == "list":
        return [_decode(child, arrays, path, depth + 1) for child in node["list"]]
    if kind == "tuple":
        return tuple(_decode(child, arrays, path, depth + 1) for child in node["tuple"])
    raise _invalid(path, f"unknown item {str(node)[:80]!r} in its structure record")


def _to_value(array):
    """A loaded array as a Tensor on the active backend (numbers and bools); other arrays
    (strings) have no Tensor form and stay host NumPy arrays."""
    if array.dtype.kind not in "biufc":
        return array
    return Tensor._wrap(backend.to_backend(array))  # a fresh array: no need to copy it again
