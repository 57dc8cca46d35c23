"""Toy sequence tasks to train from one command: ``python -m tinygrad_rnn train TASK``.

    from tinygrad_rnn import tasks
    tasks.names()                      # ['adding', 'charlm', ..., 'health_varlen', 'sine']
    task = tasks.get("sine")(seed=0)   # a Task: batches, model factory, loss, metric
    x, y = task.batch(step=0)

Each task lives in its own module; :class:`~.base.Task` documents what they provide.
"""
from __future__ import annotations

from .adding import AddingTask
from .base import Defaults, Metric, Task
from .charlm import CharLMTask
from .copying import CopyTask
from .health import HealthTask
from .health_varlen import HealthVarLenTask
from .model import SequenceModel
from .sine import SineTask

_REGISTRY: dict[str, type[Task]] = {
    cls.name: cls for cls in (SineTask, AddingTask, CopyTask, CharLMTask, HealthTask,
                             HealthVarLenTask)}


class UnknownTaskError(ValueError):
    """Raised by :func:`get` for a name that is not a task."""


def names() -> list[str]:
    """The names of all tasks, sorted."""
    return sorted(_REGISTRY)


def get(name: str) -> type[Task]:
    """The task class called ``name``; build it with ``get(name)(seed=..., ...)``."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise UnknownTaskError(f"unknown task {name!r}; valid tasks are: "
                               + ", ".join(names())) from None


__all__ = ["Task", "Defaults", "Metric", "SequenceModel", "UnknownTaskError", "names", "get"]
