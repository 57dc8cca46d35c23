"""``tinygrad_rnn.nn.functional`` (``F``): activations, softmax, losses, ``embedding``,
``layer_norm`` and ``one_hot`` as functions, with PyTorch's names, arguments and defaults.

Most are built from the differentiable ops of :class:`~tinygrad_rnn.Tensor`. Two are fused
ops (forward and backward side by side) because PyTorch defines their gradient in a way the
composition would not give: ``binary_cross_entropy`` (clamped logs, a finite gradient at 0 and
1) and ``embedding`` (no gradient for the ``padding_idx`` row).

Class-index losses (``nll_loss``, ``cross_entropy``) take ``input (N, C)`` with ``target (N,)``,
``(C,)`` with a 0-d target, or ``(N, C, d1, ...)`` with ``(N, d1, ...)``. Their ``mean`` is a
*weighted* mean: ``Σ w[t_i] loss_i / Σ w[t_i]`` over the targets that are not
``ignore_index``, exactly as PyTorch.
"""
from __future__ import annotations

import math

from .. import backend
from ..errors import ShapeError
from ..tensor import Tensor

REDUCTIONS = ("mean", "sum", "none")


def tanh(x: Tensor) -> Tensor:
    return x.tanh()


def relu(x: Tensor) -> Tensor:
    return x.relu()


def sigmoid(x: Tensor) -> Tensor:
    return x.sigmoid()


def log_softmax(x: Tensor, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """``x - logsumexp(x)`` along ``axis`` (``dim``), computed stably: ``Tensor.log_softmax``."""
    _check_float(x, "log_softmax")
    return x.log_softmax(axis if dim is None else dim)


def softmax(x: Tensor, axis: int = -1, *, dim: int | None = None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``axis`` (``dim``), via the stable ``log_softmax``."""
    return log_softmax(x, axis, dim=dim).exp()


def dropout(x: Tensor, p: float = 0.5, training: bool = True) -> Tensor:
    """Zero each element with probability ``p`` and scale the rest by ``1/(1-p)``, in training
    only. The mask comes from the seeded host generator."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return x
    if p == 1.0:
        return x * 0.0
    keep = backend.rng().random(x.shape) >= p
    mask = backend.to_backend((keep / (1.0 - p)).astype(x.dtype), x.backend)
    return x * Tensor._wrap(mask)


def mse_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean squared error ``(input - target)²``, reduced by ``mean``, ``sum`` or ``none``."""
    _check_float(input, "mse_loss")
    target = _as_tensor(target, input, "mse_loss").astype(input.dtype)
    if input.shape != target.shape:
        raise ShapeError(f"mse_loss: input shape {input.shape} and target shape "
                         f"{target.shape} must be the same (no silent broadcasting)")
    diff = input - target
    return _reduce(diff * diff, reduction)


def nll_loss(input: Tensor, target, weight=None, ignore_index: int = -100,
             reduction: str = "mean") -> Tensor:
    """Negative log-likelihood of class indices, ``-weight[t] * input[t]``, for log-probability
    ``input`` (e.g. from ``log_softmax``).

    Shapes as in PyTorch: ``input (N, C)`` with ``target (N,)``; ``(C,)`` with a 0-d target;
    ``(N, C, d1, ...)`` with ``(N, d1, ...)``. Targets equal to ``ignore_index`` contribute
    nothing; ``mean`` divides by the summed weights of the targets that count (so with
    ``weight`` it is a weighted mean, and NaN if nothing counts, as in PyTorch).
    """
    _check_float(input, "nll_loss")
    _check_reduction(reduction)
    target = _class_indices(target, input, "nll_loss")
    rows, classes = _class_rows(input, target.shape, "nll_loss")
    return _nll(rows, target, _class_weight(weight, classes, input, "nll_loss"), ignore_index,
                reduction)


def cross_entropy(input: Tensor, target, weight=None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0) -> Tensor:
    """Cross entropy between ``softmax(input)`` (logits) and ``target``: class indices
    (``nll_loss`` of ``log_softmax``, same shapes and options), or class *probabilities* of
    ``input``'s shape. ``label_smoothing`` ε mixes the target with the uniform distribution:
    ``(1 - ε) * loss + ε * (mean over classes of -log p)``, with PyTorch's normalisations.
    """
    _check_float(input, "cross_entropy")
    _check_reduction(reduction)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    target = _as_tensor(target, input, "cross_entropy")
    if backend.is_floating(target.dtype):
        if ignore_index != -100:  # no class index to compare with: refused, as in PyTorch
            raise RuntimeError("ignore_index is not supported for floating point target (class "
                               "probabilities); mask the ignored positions out of the loss")
        return _cross_entropy_probabilities(input, target, weight, reduction, label_smoothing)
    target = _class_indices(target, input, "cross_entropy")
    rows, classes = _class_rows(input, target.shape, "cross_entropy")
    logp = rows.log_softmax(-1)
    class_weight = _class_weight(weight, classes, input, "cross_entropy")
    loss = _nll(logp, target, class_weight, ignore_index, reduction)
    if label_smoothing == 0.0:
        return loss
    # The smoothing term: -Σ_c w_c log p_c per element (ignored elements give 0), reduced
    # like the NLL term (a weighted mean divides by the same summed target weights).
    counted, safe = _counted(target, classes, ignore_index)
    per_class = logp if class_weight is None else logp * _constant(class_weight, input)
    smooth = _zero_where_ignored(-per_class.sum(-1), counted)
    if reduction == "none":
        smooth = smooth.reshape(target.shape)
    elif reduction == "sum":
        smooth = smooth.sum()
    else:
        norm = (class_weight[safe] * counted).sum() if class_weight is not None else counted.sum()
        smooth = _weighted_mean(smooth.sum(), float(norm))
    return (1 - label_smoothing) * loss + smooth * (label_smoothing / classes)


def _cross_entropy_probabilities(input: Tensor, target: Tensor, weight, reduction: str,
                                 label_smoothing: float) -> Tensor:
    """Cross entropy against class probabilities ``target`` (``input``'s shape): ``mean``
    divides by the number of elements (``N * d1 * ...``), whatever the weights."""
    if target.shape != input.shape:
        if input.ndim and target.shape == _without_class_axis(input.shape):
            raise TypeError(f"cross_entropy: expected target of integer dtype (class "
                            f"indices), got {target.dtype}; convert it with .long() (a float "
                            f"target means class probabilities, of shape {input.shape})")
        raise ShapeError(f"cross_entropy: class-probability target must have the input's "
                         f"shape {input.shape}, got {target.shape}")
    target = target.astype(input.dtype)
    rows, classes = _class_rows(input, None, "cross_entropy")
    probs, _ = _class_rows(target, None, "cross_entropy")
    if label_smoothing > 0:
        probs = probs * (1 - label_smoothing) + label_smoothing / classes
    per_class = rows.log_softmax(-1) * probs
    class_weight = _class_weight(weight, classes, input, "cross_entropy")
    if class_weight is not None:
        per_class = per_class * _constant(class_weight, input)
    if reduction == "none":
        return -per_class.sum(-1).reshape(_without_class_axis(input.shape))
    if reduction == "sum":
        return -per_class.sum()
    return -per_class.sum() / (input.numel() // classes if input.numel() else 0)


def binary_cross_entropy(input: Tensor, target, weight=None, reduction: str = "mean") -> Tensor:
    """``-w (t log x + (1 - t) log(1 - x))`` for probabilities ``input`` in [0, 1] and
    targets of the same shape. As in PyTorch each log is clamped at -100 (so a confident
    wrong answer costs 100, not inf), and the gradient ``(x - t) / max(x (1 - x), 1e-12)``
    stays finite. No gradient flows to ``target``."""
    _check_float(input, "binary_cross_entropy")
    _check_reduction(reduction)
    target = _same_shape_target(target, input, "binary_cross_entropy")
    xp, x, t = input.xp, input.data, target.data
    if not bool(((x >= 0) & (x <= 1)).all()):
        raise RuntimeError("binary_cross_entropy: all elements of input should be between 0 "
                           "and 1 (pass probabilities, e.g. sigmoid(logits); or use "
                           "binary_cross_entropy_with_logits)")
    if not bool(((t >= 0) & (t <= 1)).all()):
        raise RuntimeError("binary_cross_entropy: all elements of target should be between 0 "
                           "and 1")
    with backend.np.errstate(divide="ignore"):
        out = ((t - 1) * xp.maximum(xp.log1p(-x), -100.0)
               - t * xp.maximum(xp.log(x), -100.0))

    def backward(g):
        return (g * (x - t) / xp.maximum((1 - x) * x, 1e-12),)
    losses = Tensor._make(out.astype(x.dtype, copy=False), (input,), backward,
                          "binary_cross_entropy")
    if weight is not None:
        losses = losses * _as_tensor(weight, input, "binary_cross_entropy").astype(input.dtype)
    return _reduce(losses, reduction)


def binary_cross_entropy_with_logits(input: Tensor, target, weight=None,
                                     reduction: str = "mean", pos_weight=None) -> Tensor:
    """``binary_cross_entropy(sigmoid(input), target)`` computed stably from logits:
    ``(1 - t) x - l · log σ(x)`` with ``l = 1 + (pos_weight - 1) t`` (``pos_weight`` > 1
    weighs the positive examples up, e.g. for rare positives) and
    ``log σ(x) = min(x, 0) - log1p(exp(-|x|))``, which never overflows."""
    _check_float(input, "binary_cross_entropy_with_logits")
    _check_reduction(reduction)
    target = _as_tensor(target, input, "binary_cross_entropy_with_logits")
    if target.shape != input.shape:
        raise ShapeError(f"Target size ({target.shape}) must be the same as input size "
                         f"({input.shape})")
    target = target.astype(input.dtype)
    log_sigmoid = input.minimum(0.0) - (-input.abs()).exp().log1p()
    if pos_weight is not None:
        pos_weight = _as_tensor(pos_weight, input, "binary_cross_entropy_with_logits")
        log_sigmoid = log_sigmoid * ((pos_weight.astype(input.dtype) - 1) * target + 1)
    losses = (1 - target) * input - log_sigmoid
    if weight is not None:
        weight = _as_tensor(weight, input, "binary_cross_entropy_with_logits")
        losses = losses * weight.astype(input.dtype)
    return _reduce(losses, reduction)


def l1_loss(input: Tensor, target, reduction: str = "mean") -> Tensor:
    """Mean absolute error ``|input - target|`` (same shapes); gradient ``sign``, 0 at 0."""
    _check_float(input, "l1_loss")
    _check_reduction(reduction)
    target = _same_shape_target(target, input, "l1_loss")
    return _reduce((input - target).abs(), reduction)


def huber_loss(input: Tensor, target, reduction: str = "mean", delta: float = 1.0) -> Tensor:
    """``0.5 z²`` for ``z = |input - target| < delta``, else ``delta (z - 0.5 delta)``:
    squared error near the target, absolute error (bounded gradient) far from it."""
    _check_float(input, "huber_loss")
    _check_reduction(reduction)
    if not delta > 0:
        raise ValueError(f"huber_loss does not support non-positive values for delta, got "
                         f"{delta}")
    target = _same_shape_target(target, input, "huber_loss")
    z = (input - target).abs()
    near = z.data < delta
    return _reduce((0.5 * z * z).where(near, delta * (z - 0.5 * delta)), reduction)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """``(*) int64 -> (*, num_classes) int64``: a 1 at each class index (``num_classes=-1``:
    one more than the largest index)."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"one_hot: expected a Tensor, got {type(tensor).__name__}")
    if not backend.is_integer(tensor.dtype):
        raise TypeError(f"one_hot is only applicable to index tensor, got dtype {tensor.dtype}")
    labels = backend.to_host(tensor.data)
    if num_classes == -1:
        if labels.size == 0:
            raise RuntimeError("Can not infer total number of classes from empty tensor.")
        num_classes = int(labels.max()) + 1
    if labels.size and int(labels.min()) < 0:
        raise RuntimeError("Class values must be non-negative.")
    if labels.size and int(labels.max()) >= num_classes:
        raise RuntimeError("Class values must be smaller than num_classes.")
    out = (labels[..., None] == backend.np.arange(num_classes)).astype(backend.np.int64)
    return Tensor(backend.to_backend(out, tensor.backend))


def layer_norm(input: Tensor, normalized_shape, weight=None, bias=None,
               eps: float = 1e-5) -> Tensor:
    """Normalise over the last ``len(normalized_shape)`` axes to zero mean and unit
    (population) variance, ``(x - mean) / sqrt(var + eps)``, then ``* weight + bias``."""
    _check_float(input, "layer_norm")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) \
        else tuple(normalized_shape)
    if len(shape) == 0 or input.shape[input.ndim - len(shape):] != shape \
            or input.ndim < len(shape):
        raise ShapeError(f"Given normalized_shape={list(shape)}, expected input with shape "
                         f"[*, {', '.join(map(str, shape))}], but got input of size"
                         f"{list(input.shape)}")
    axes = tuple(range(input.ndim - len(shape), input.ndim))
    # float16 is normalised in float32, as PyTorch does: the square of an entry of 256 or
    # more overflows float16, and the inf variance made every output 0.
    x = input.astype("float32") if input.dtype == backend.np.float16 else input
    mean = x.mean(axis=axes, keepdims=True)
    centred = x - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    out = centred * (var + eps).rsqrt()
    if weight is not None:
        out = out * weight
    if bias is not None:
        out = out + bias
    return out.astype(input.dtype)


def embedding(input: Tensor, weight: Tensor, padding_idx: int | None = None,
              max_norm: float | None = None) -> Tensor:
    """Rows of ``weight (num_embeddings, D)`` picked by the integer ``input (*)`` →
    ``(*, D)``. The gradient of ``weight`` sums over repeated indices, and the row
    ``padding_idx`` (if given) gets no gradient, as in PyTorch. ``max_norm`` is refused:
    PyTorch implements it by rescaling ``weight`` in place during the forward pass."""
    if max_norm is not None:
        raise NotImplementedError("embedding: max_norm is not supported (PyTorch renormalises "
                                  "the weight in place inside forward); rescale the rows "
                                  "yourself under no_grad() if you need it")
    if not isinstance(input, Tensor) or not backend.is_integer(input.dtype):
        got = input.dtype if isinstance(input, Tensor) else type(input).__name__
        raise TypeError(f"embedding: expected an integer index tensor (Long or Int) as input, "
                        f"got {got}")
    rows = weight.shape[0]
    index = input.data
    if index.size and (int(index.min()) < 0 or int(index.max()) >= rows):
        raise IndexError(f"embedding: index out of range in self (indices must be in "
                         f"[0, {rows}), got min {int(index.min())}, max {int(index.max())})")
    pad = None if padding_idx is None else padding_idx % rows
    xp = weight.xp

    def backward(g):
        grad = xp.zeros_like(weight.data)
        backend.scatter_add(grad, index.reshape(-1), g.reshape(-1, weight.shape[1]))
        if pad is not None:
            grad[pad] = 0
        return (grad,)
    return Tensor._make(weight.data[index], (weight,), backward, "embedding")


# ------------------------------------------------------------------------------- helpers

def _class_rows(input: Tensor, target_shape, op: str) -> tuple[Tensor, int]:
    """``input`` as ``(M, C)`` rows, one per element of the class-index target (class axis
    1, or 0 for unbatched ``(C,)`` input), and the number of classes C. ``target_shape``
    (if given) must be ``input``'s shape without the class axis."""
    if input.ndim == 0:
        raise ShapeError(f"{op}: input must have a class axis, got a 0-d tensor")
    expected = _without_class_axis(input.shape)
    if target_shape is not None and tuple(target_shape) != expected:
        if input.ndim == 1:
            raise ShapeError(f"{op}: for unbatched input of shape {input.shape} the target "
                             f"must be a 0-d class index, got shape {tuple(target_shape)}")
        raise ShapeError(f"{op}: expected target of shape {expected} for input of shape "
                         f"{input.shape} (N, C, ...), got {tuple(target_shape)}")
    if input.ndim == 1:
        return input.reshape(1, -1), input.shape[0]
    classes = input.shape[1]
    if input.ndim > 2:  # (N, C, d1, ...) -> (N, d1, ..., C)
        input = input.permute((0,) + tuple(range(2, input.ndim)) + (1,))
    return input.reshape(-1, classes), classes


def _without_class_axis(shape: tuple) -> tuple:
    return () if len(shape) == 1 else shape[:1] + shape[2:]


def _class_indices(target, input: Tensor, op: str) -> Tensor:
    target = _as_tensor(target, input, op)
    if not backend.is_integer(target.dtype):
        raise TypeError(f"{op}: expected target of integer dtype (class indices), got "
                        f"{target.dtype}")
    return target


def _counted(target: Tensor, classes: int, ignore_index: int):
    """Host arrays: which targets count (not ``ignore_index``; float 0/1) and the targets
    with ignored ones replaced by class 0 (safe to index with). Out-of-range targets that
    are not ignored are an ``IndexError``."""
    labels = backend.to_host(target.data).reshape(-1)
    keep = labels != ignore_index
    bad = labels[keep & ((labels < 0) | (labels >= classes))]
    if bad.size:
        raise IndexError(f"Target {int(bad[0])} is out of bounds for {classes} classes "
                         f"(expected 0 <= target < {classes})")
    return keep.astype(backend.np.float64), backend.np.where(keep, labels, 0)


def _nll(logp: Tensor, target: Tensor, class_weight, ignore_index: int,
         reduction: str) -> Tensor:
    """``-w[t] * logp[t]`` per row of ``logp (M, C)``, reduced with PyTorch's weighted mean."""
    counted, safe = _counted(target, logp.shape[1], ignore_index)
    target_weight = counted if class_weight is None else class_weight[safe] * counted
    picked = logp[logp.xp.arange(logp.shape[0]), backend.to_backend(safe, logp.backend)]
    losses = -(_zero_where_ignored(picked, counted) * _constant(target_weight, logp))
    if reduction == "none":
        return losses.reshape(target.shape)
    if reduction == "sum":
        return losses.sum()
    return _weighted_mean(losses.sum(), float(target_weight.sum()))


def _weighted_mean(loss_sum: Tensor, total_weight: float) -> Tensor:
    """``loss_sum / total_weight``, or NaN if nothing counts (0/0, as PyTorch). The NaN
    case multiplies by NaN rather than divide by 0, whose backward would send inf, not
    PyTorch's 0, towards the ignored targets (and warn)."""
    return loss_sum / total_weight if total_weight != 0 else loss_sum * math.nan


def _zero_where_ignored(per_element: Tensor, counted) -> Tensor:
    """``per_element`` (one entry per target) with the ignored targets' entries exactly 0 and
    no gradient through them, as PyTorch skips them. Multiplying by their 0 weight is not
    enough: 0 * -inf is NaN where an ignored row's log-probability is -inf (a masked padding
    class), and 0 * NaN is NaN in the backward of a mean where nothing counts."""
    ignored = Tensor._wrap(backend.to_backend(counted == 0, per_element.backend))
    return per_element.masked_fill(ignored, 0.0)


def _class_weight(weight, classes: int, like: Tensor, op: str):
    """``weight`` as a host float64 array of shape ``(C,)`` (None stays None)."""
    if weight is None:
        return None
    if isinstance(weight, str):
        raise TypeError(f"{op}: the third argument is weight (as in PyTorch), got the string "
                        f"{weight!r}; pass the reduction by keyword: reduction={weight!r}")
    array = backend.to_host(weight.data if isinstance(weight, Tensor) else
                            backend.np.asarray(weight))
    if array.shape != (classes,):
        raise ShapeError(f"{op}: weight tensor should be defined either for all {classes} "
                         f"classes or no classes but got weight tensor of shape: "
                         f"{list(array.shape)}")
    return array.astype(backend.np.float64)


def _constant(host_array, like: Tensor) -> Tensor:
    """A host array as a constant tensor on ``like``'s backend and dtype."""
    return Tensor._wrap(backend.to_backend(host_array.astype(like.dtype), like.backend))


def _same_shape_target(target, input: Tensor, op: str) -> Tensor:
    target = _as_tensor(target, input, op)
    if target.shape != input.shape:
        raise ShapeError(f"{op}: Using a target size ({target.shape}) that is different to "
                         f"the input size ({input.shape}) is not supported (PyTorch "
                         "deprecates it; it would broadcast silently). Please ensure they "
                         "have the same size.")
    if target.requires_grad:
        raise ValueError(f"{op}: no gradient flows to target here; pass target.detach()")
    return target.astype(input.dtype)


def _check_reduction(reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction; expected one of "
                         f"{', '.join(REDUCTIONS)}")


def _reduce(losses: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return losses.mean()
    if reduction == "sum":
        return losses.sum()
    if reduction == "none":
        return losses
    raise ValueError(f"{reduction} is not a valid value for reduction; expected one of "
                     f"{', '.join(REDUCTIONS)}")


def _as_tensor(value, like: Tensor, op: str) -> Tensor:
    if isinstance(value, Tensor):
        return value
    try:
        return Tensor(value)
    except TypeError as exc:
        raise TypeError(f"{op}: target must be a Tensor or an array, got "
                        f"{type(value).__name__} ({exc})") from None


def _check_float(x: Tensor, op: str) -> None:
    if not isinstance(x, Tensor):
        raise TypeError(f"{op}: expected a Tensor, got {type(x).__name__}")
    if not backend.is_floating(x.dtype):
        raise TypeError(f"{op}: expected a floating point tensor, got dtype {x.dtype}")
