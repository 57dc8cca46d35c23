"""Optimizers and learning-rate schedulers, named and behaving as in ``torch.optim``.

An optimizer holds the parameters it updates, grouped in ``param_groups``, and a
per-parameter ``state``; a training step is the usual::

    opt = optim.Adam(model.parameters(), lr=1e-3)
    sched = optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for x, y in data:
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()
        sched.step()

One file per optimizer: :mod:`.optimizer` (the base class and the state-dict layout),
:mod:`.sgd`, :mod:`.adam` (``Adam``, ``AdamW``), :mod:`.rmsprop`, :mod:`.adagrad`, and
:mod:`.lr_scheduler`.
"""
from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer, ParamsT
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "ParamsT", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad",
           "lr_scheduler"]
