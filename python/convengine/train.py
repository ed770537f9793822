"""Alias of convengine.training (the name the issue uses): Trainer, History, metrics,
checkpoints."""

from .training import *  # noqa: F401,F403
from .training import __all__  # noqa: F401
