"""The random generator the data pipeline draws from.

Inside a DataLoader each batch is built under its own generator, seeded from the loader's
generator and the batch's index, so augmentation is reproducible whatever thread builds the
batch and however the prefetching interleaves with training (which draws from convengine's
default generator for dropout). Outside a DataLoader, convengine's default generator is used
(convengine.manual_seed seeds both).
"""

import contextlib
import threading

import numpy as np

from ..creation import default_generator

__all__ = ["generator", "seeded"]

_local = threading.local()


def generator():
    """The numpy Generator that random transforms should draw from right now."""
    rng = getattr(_local, "rng", None)
    return rng if rng is not None else default_generator()


@contextlib.contextmanager
def seeded(seed):
    """Runs the body with generator() seeded by `seed` (an int or a sequence of ints)."""
    previous = getattr(_local, "rng", None)
    _local.rng = np.random.default_rng(seed)
    try:
        yield _local.rng
    finally:
        _local.rng = previous
