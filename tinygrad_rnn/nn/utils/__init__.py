"""Helpers around the layers, as in ``torch.nn.utils``:

* :mod:`~tinygrad_rnn.nn.utils.clip_grad`: gradient clipping (``clip_grad_norm_``,
  ``clip_grad_value_``), the usual cure for exploding gradients in BPTT;
* :mod:`~tinygrad_rnn.nn.utils.rnn`: variable-length sequences (``PackedSequence``,
  ``pack_padded_sequence``, ``pad_packed_sequence``, ``pad_sequence``, ...), which the
  recurrent layers accept in place of a padded batch.
"""
from . import rnn
from .clip_grad import clip_grad_norm_, clip_grad_value_

__all__ = ["clip_grad_norm_", "clip_grad_value_", "rnn"]
