r"""Variable-length sequences, as ``torch.nn.utils.rnn``: padding and packing.

A batch of sequences of different lengths can be stored in two ways.

*Padded*: one ``(T, N, *)`` tensor (``(N, T, *)`` with ``batch_first``), each sequence
followed by filler up to the longest length ``T``. Simple, but a recurrent layer then runs
over the filler too: ``h_n`` is the state *after* the padding, and the backward direction of
a bidirectional layer reads the padding *first*.

*Packed*: the real steps only, time-major, sequences sorted by decreasing length. For the
lengths ``[4, 2, 3]`` (sequences a, b, c; sorted order a, c, b)::

    padded (T=4, N=3)        packed data (9 rows)             batch_sizes
    t=0:  a0  b0  c0         a0 c0 b0 | a1 c1 b1 | a2 c2 | a3   [3, 3, 2, 1]
    t=1:  a1  b1  c1
    t=2:  a2  ·   c2         sorted_indices   = [0, 2, 1]  (sorted position -> batch index)
    t=3:  a3  ·   ·          unsorted_indices = [0, 2, 1]  (batch index -> sorted position)

Step t owns the ``batch_sizes[t]`` rows after the first ``batch_sizes[0] + … +
batch_sizes[t-1]``, and those rows are the first ``batch_sizes[t]`` sequences in sorted
order: the sequences still running at step t. A recurrent layer can therefore compute only
``batch_sizes[t]`` rows at step t, and cost follows the number of real tokens.

Packing is a *gather* (pick the real steps out of the padded tensor) and padding the
matching *scatter* (put them back, filler elsewhere); each is the other's backward, so
gradients flow through both (:func:`_take` and :func:`_place`).

Sorting: with ``enforce_sorted=False`` the lengths are sorted for you (ties keep the
caller's order: a stable sort). PyTorch's sort agrees for batches of up to 16 sequences;
above that its tie order is an implementation detail, so ``data`` rows of tied sequences may
be ordered differently from PyTorch's. Everything in the caller's order (padded outputs,
``h_n``) is the same either way.

``batch_sizes`` and the lengths ``pad_packed_sequence`` returns are int64 tensors on the
host (NumPy) whichever backend is active, as PyTorch keeps them on the CPU: they steer
Python loops. ``sorted_indices``/``unsorted_indices`` live with the data.
"""
from __future__ import annotations

import numbers
from collections import namedtuple
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from ... import backend
from ...errors import ShapeError
from ...tensor import Tensor

np = backend.np
Lengths = Union[Tensor, Sequence[int]]

PackedSequence_ = namedtuple("PackedSequence_", ["data", "batch_sizes", "sorted_indices",
                                                "unsorted_indices"])


class PackedSequence(PackedSequence_):
    """A batch of variable-length sequences in the packed layout (module docstring).

    Fields (a named tuple, as in PyTorch):

    * ``data`` ``(sum of lengths, *)``: the real steps, time-major, sorted by length;
    * ``batch_sizes`` ``(T,)`` int64 on the host: how many sequences are running at step t;
    * ``sorted_indices`` ``(N,)`` int64, or None when the batch was already sorted: batch
      index of the sequence at each sorted position;
    * ``unsorted_indices`` ``(N,)``: its inverse (computed when not given).

    Make one with :func:`pack_padded_sequence` or :func:`pack_sequence` rather than by hand.
    """
    __slots__ = ()

    def __new__(cls, data: Tensor, batch_sizes: Tensor,
                sorted_indices: Optional[Tensor] = None,
                unsorted_indices: Optional[Tensor] = None) -> "PackedSequence":
        if not isinstance(data, Tensor):
            raise TypeError(f"PackedSequence: data must be a Tensor, got {type(data).__name__}")
        sizes = _lengths_array(batch_sizes, "batch_sizes")
        if sizes.size == 0 or sizes.min() <= 0 or (sizes[1:] > sizes[:-1]).any():
            raise ValueError(f"PackedSequence: batch_sizes must be positive and non-increasing, "
                             f"got {sizes.tolist()}")
        if data.ndim == 0 or data.shape[0] != int(sizes.sum()):
            raise ShapeError(f"PackedSequence: data must have sum(batch_sizes) = "
                             f"{int(sizes.sum())} rows, got data of shape {data.shape}")
        if unsorted_indices is None and sorted_indices is not None:
            unsorted_indices = _device_indices(_invert(_host(sorted_indices)), data)
        return cls._of(data, sizes, sorted_indices, unsorted_indices)

    @classmethod
    def _of(cls, data: Tensor, sizes, sorted_indices: Optional[Tensor],
            unsorted_indices: Optional[Tensor]) -> "PackedSequence":
        """The named tuple of parts already checked (host int64 ``sizes``, both indices or
        neither): what the packing functions, which build them consistent, use."""
        return super().__new__(cls, data, Tensor._wrap(sizes), sorted_indices,
                               unsorted_indices)

    def to(self, target) -> "PackedSequence":
        """The same sequences with ``data`` and the indices on backend ``target``
        (``batch_sizes`` stays on the host). A dtype (``p.to(tg.float64)``) converts
        ``data`` only, as in PyTorch: the indices stay int64."""
        if not isinstance(target, str):
            return self._replace(data=self.data.to(target))

        def move(indices):
            return None if indices is None else indices.to(target)
        return type(self)(self.data.to(target), self.batch_sizes, move(self.sorted_indices),
                          move(self.unsorted_indices))

    def float(self) -> "PackedSequence":
        return self._replace(data=self.data.float())

    def double(self) -> "PackedSequence":
        return self._replace(data=self.data.double())


# ---------------------------------------------------------------------------------- packing
def pack_padded_sequence(input: Tensor, lengths: Lengths, batch_first: bool = False,
                         enforce_sorted: bool = True) -> PackedSequence:
    """Pack a padded batch ``input`` ``(T, N, *)`` (``(N, T, *)`` with ``batch_first``) whose
    sequence ``n`` has ``lengths[n]`` real steps.

    ``lengths``: a list of ints or a 1-D integer tensor, each in ``1 … T``. With
    ``enforce_sorted=True`` (the default) they must be non-increasing; pass
    ``enforce_sorted=False`` to have the batch sorted (and later unsorted) for you.
    """
    _check_tensor(input, "pack_padded_sequence", "input", min_ndim=2)
    given = _lengths_array(lengths, "lengths")
    time_axis = 1 if batch_first else 0
    T, N = input.shape[time_axis], input.shape[1 - time_axis]
    if len(given) != N:
        raise ShapeError(f"Expected `len(lengths)` to be equal to batch_size, but got "
                         f"{len(given)} (batch_size={N})")
    _check_positive(given)
    if enforce_sorted and (given[1:] > given[:-1]).any():
        raise RuntimeError("`lengths` array must be sorted in decreasing order when "
                           "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                           "pack_padded_sequence and/or pack_sequence to sidestep this "
                           "requirement if you do not need ONNX exportability.")
    order = np.arange(N) if enforce_sorted else np.argsort(-given, kind="stable")
    sorted_lengths = given[order]
    longest = int(sorted_lengths[0])
    if longest > T:
        # PyTorch reads past the input here; a length longer than the data is a mistake.
        raise ShapeError(f"pack_padded_sequence: found a length of {longest} in "
                         f"'lengths', but the input has only {T} time steps "
                         f"(input.size({time_axis}) = {T}); no length may exceed it")
    steps = np.arange(longest)[:, None]                                    # (T', 1)
    running = steps < sorted_lengths[None, :]                              # (T', N)
    # Where step t of the j-th longest sequence is in input's first two axes, flattened;
    # the running ones, read time-major, are the packed rows.
    position = order[None, :] * T + steps if batch_first else steps * N + order[None, :]
    data = _take(input, input.xp.asarray(position[running]), "pack_padded_sequence")
    if enforce_sorted:
        return PackedSequence._of(data, running.sum(axis=1), None, None)
    return PackedSequence._of(data, running.sum(axis=1), _device_indices(order, input),
                              _device_indices(_invert(order), input))


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Pack a list of ``(L_i, *)`` tensors (longest first unless ``enforce_sorted=False``)."""
    sequences = _sequence_list(sequences, "pack_sequence")
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


# ---------------------------------------------------------------------------------- padding
def pad_packed_sequence(sequence: PackedSequence, batch_first: bool = False,
                        padding_value: float = 0.0,
                        total_length: Optional[int] = None) -> Tuple[Tensor, Tensor]:
    """Undo :func:`pack_padded_sequence`: returns ``(padded, lengths)``.

    ``padded`` is ``(T, N, *)`` (``(N, T, *)`` with ``batch_first``) in the caller's batch
    order, ``padding_value`` after each sequence's end; ``T`` is the longest length, or
    ``total_length`` when given (it must be at least that). ``lengths`` ``(N,)`` is int64 on
    the host.
    """
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"pad_packed_sequence: expected a PackedSequence, got "
                        f"{type(sequence).__name__}")
    batch_sizes = sequence.batch_sizes.data
    longest = len(batch_sizes)
    if total_length is None:
        total_length = longest
    elif not isinstance(total_length, numbers.Integral):
        raise TypeError(f"pad_packed_sequence: total_length must be an int, got "
                        f"{total_length!r} ({type(total_length).__name__})")
    elif total_length < longest:
        raise ValueError(f"Expected total_length to be at least the length of the longest "
                         f"sequence in input, but got total_length={total_length} and max "
                         f"sequence length being {longest}")
    N = int(batch_sizes[0])
    sizes = np.zeros(total_length, dtype=np.int64)
    sizes[:longest] = batch_sizes
    running = np.arange(N)[None, :] < sizes[:, None]          # (T, N), sorted batch order
    slot = np.arange(N)                                       # sorted position of column n
    if sequence.unsorted_indices is not None:                 # columns back in caller order
        slot = _host(sequence.unsorted_indices)
        running = running[:, slot]
    steps, cols = np.nonzero(running)
    first_row = np.cumsum(batch_sizes) - batch_sizes          # the first packed row of step t
    packed_row = first_row[steps] + slot[cols]
    where = (cols, steps) if batch_first else (steps, cols)
    shape = (N, total_length) if batch_first else (total_length, N)
    padded = _place(sequence.data, shape, _flat_index(where, shape, sequence.data), packed_row,
                    padding_value, "pad_packed_sequence")
    lengths = running.sum(axis=0)
    return padded, Tensor._wrap(lengths.astype(np.int64))


def pad_sequence(sequences: Sequence[Tensor], batch_first: bool = False,
                 padding_value: float = 0.0, padding_side: str = "right") -> Tensor:
    """Stack ``(L_i, *)`` tensors into one ``(T, N, *)`` tensor (``(N, T, *)`` with
    ``batch_first``), ``T = max L_i``, filling with ``padding_value`` after each sequence
    (``padding_side="right"``) or before it (``"left"``). Sequences may be empty."""
    if padding_side not in ("left", "right"):
        raise RuntimeError(f"Expected padding_side to be one of left or right, but got "
                           f"{padding_side}.")
    sequences = _sequence_list(sequences, "pad_sequence")
    lengths = np.array([s.shape[0] for s in sequences], dtype=np.int64)
    T, N = int(lengths.max()), len(sequences)
    offsets = np.cumsum(lengths) - lengths                    # first row of each sequence
    start = T - lengths if padding_side == "left" else np.zeros_like(lengths)
    position = np.arange(T)[:, None] - start[None, :]          # step within the sequence
    running = (position >= 0) & (position < lengths[None, :])  # (T, N)
    steps, cols = np.nonzero(running)
    source_row = offsets[cols] + position[steps, cols]
    where = (cols, steps) if batch_first else (steps, cols)
    rows = Tensor.cat(sequences, axis=0)
    shape = (N, T) if batch_first else (T, N)
    return _place(rows, shape, _flat_index(where, shape, rows),
                  source_row, padding_value, "pad_sequence")


# -------------------------------------------------------------------------------- unpacking
def unpack_sequence(packed_sequences: PackedSequence) -> List[Tensor]:
    """The list of ``(L_i, *)`` sequences, in the caller's order (inverse of
    :func:`pack_sequence`)."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return [padded[n, :length] for n, length in enumerate(lengths.tolist())]


def unpad_sequence(padded_sequences: Tensor, lengths: Lengths,
                   batch_first: bool = False) -> List[Tensor]:
    """The list of ``(L_i, *)`` sequences cut out of a padded ``(T, N, *)`` batch
    (``(N, T, *)`` with ``batch_first``); inverse of :func:`pad_sequence` with right padding."""
    _check_tensor(padded_sequences, "unpad_sequence", "padded_sequences", min_ndim=2)
    given = _lengths_array(lengths, "lengths")
    batch = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    N, T = batch.shape[0], batch.shape[1]
    if len(given) != N:
        raise ShapeError(f"unpad_sequence: expected one length per sequence ({N}), got "
                         f"{len(given)}")
    if len(given) and (given.min() < 0 or given.max() > T):
        raise ShapeError(f"unpad_sequence: every length must be in [0, {T}] (the padded "
                         f"length), got {given.tolist()}")
    return [batch[n, :length] for n, length in enumerate(given.tolist())]


# ------------------------------------------------------------ gather and scatter, adjoint
def _take(source: Tensor, where, op: str) -> Tensor:
    """The rows ``where`` (flat positions in the first two axes, see :func:`_flat_index`)
    of ``source`` ``(T, N, *)`` or ``(N, T, *)``, each named at most once (so the backward
    can assign instead of accumulate): the gradient is ``g`` put back at ``where``, zero
    elsewhere (the padding gets none). ``take`` along one axis: one index, not two."""
    xp = source.xp
    features = source.shape[2:]

    def backward(g):
        grad = xp.zeros((source.shape[0] * source.shape[1],) + features, dtype=g.dtype)
        grad[where] = g
        return (grad.reshape(source.shape),)
    rows = source.data.reshape((-1,) + features)
    return Tensor._make(xp.take(rows, where, axis=0), (source,), backward, op)


def _place(rows: Tensor, shape: tuple, where, row_of, fill: float, op: str) -> Tensor:
    """A ``shape + rows.shape[1:]`` tensor filled with ``fill``, holding ``rows[row_of[k]]``
    at flat position ``where[k]`` of its first two axes: the scatter that undoes
    :func:`_take`. Its backward gathers ``g`` back at ``where`` into each row (each row is
    placed exactly once)."""
    xp = rows.xp
    row_of = xp.asarray(row_of)
    features = rows.shape[1:]
    out = xp.full((shape[0] * shape[1],) + features, fill, dtype=rows.dtype)
    out[where] = xp.take(rows.data, row_of, axis=0)

    def backward(g):
        grad = xp.zeros_like(rows.data)
        grad[row_of] = xp.take(g.reshape((-1,) + features), where, axis=0)
        return (grad,)
    return Tensor._make(out.reshape(shape + features), (rows,), backward, op)


# ------------------------------------------------------------------------------ arguments
def _lengths_array(lengths, name: str):
    """``lengths`` (a list of ints or a 1-D integer Tensor/array) as a host int64 array.
    Floats are refused (PyTorch truncates them silently)."""
    if isinstance(lengths, Tensor):
        array = backend.to_host(lengths.data)
    elif backend.is_array(lengths):
        array = backend.to_host(lengths)
    elif isinstance(lengths, (list, tuple)):
        if not set(map(type, lengths)) <= {int} and not all(   # plain ints: no need to look
                isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in lengths):
            kinds = sorted({type(v).__name__ for v in lengths})
            raise RuntimeError(f"'{name}' argument should be a 1D CPU int64 tensor or a list "
                               f"of ints, but got a list of {', '.join(kinds)}")
        array = np.array(lengths, dtype=np.int64)
    else:
        raise TypeError(f"'{name}' argument should be a 1D CPU int64 tensor or a list of "
                        f"ints, but got {type(lengths).__name__}")
    if array.ndim != 1 or array.dtype.kind not in "iu":
        raise RuntimeError(f"'{name}' argument should be a 1D CPU int64 tensor, but got "
                           f"{array.ndim}D tensor of dtype {array.dtype}")
    return array.astype(np.int64)


def _check_positive(lengths) -> None:
    if len(lengths) and lengths.min() <= 0:
        raise RuntimeError("Length of all samples has to be greater than 0, but found an "
                           "element in 'lengths' that is <= 0")


def _check_tensor(x, fn: str, name: str, min_ndim: int) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{fn}: expected {name} to be a Tensor, got {type(x).__name__}")
    if x.ndim < min_ndim:
        raise ShapeError(f"{fn}: expected {name} to have at least {min_ndim} dimensions "
                         f"(time and batch), got shape {x.shape}")


def _sequence_list(sequences: Iterable[Tensor], fn: str) -> List[Tensor]:
    """The sequences as a list of Tensors of at least 1 dimension and equal trailing
    shape."""
    if isinstance(sequences, PackedSequence):
        raise TypeError(f"{fn}: expected a list of Tensors, got a PackedSequence")
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    for s in sequences:
        _check_tensor(s, fn, "every sequence", min_ndim=1)
    trailing = {s.shape[1:] for s in sequences}
    if len(trailing) > 1:
        raise ShapeError(f"{fn}: every sequence must have the same size after the time "
                         f"dimension, got shapes {[s.shape for s in sequences]}")
    return sequences


def _host(indices: Tensor):
    return backend.to_host(indices.data if isinstance(indices, Tensor) else indices)


def _invert(order):
    """The inverse permutation, ``inverse[order[i]] = i``: where each index sits in
    ``order``, which is the order that sorts it."""
    return np.argsort(order)


def _device_indices(indices, like: Tensor) -> Tensor:
    """Host int64 indices as a Tensor on ``like``'s backend."""
    return Tensor._wrap(like.xp.asarray(indices, dtype=np.int64))


def _flat_index(where: tuple, shape: tuple, like: Tensor):
    """The host positions ``where`` (one index array per axis) in the first two axes of
    ``shape``, as one flat index on ``like``'s backend (row ``i * shape[1] + j``)."""
    return like.xp.asarray(np.ravel_multi_index(where, shape))
