"""Dropout layers: active in training mode only, seeded through convengine.manual_seed."""

import numbers

from .. import functional as F
from .module import Module

__all__ = ["Dropout", "Dropout1d", "Dropout2d", "Dropout3d"]


class _DropoutNd(Module):
    _op = "dropout"

    def __init__(self, p=0.5, inplace=False):
        super().__init__()
        if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
            raise ValueError(f"{type(self).__name__}: dropout probability p has to be between "
                             f"0 and 1, but got {p}")
        self.p, self.inplace = float(p), inplace

    def forward(self, input):
        return getattr(F, self._op)(input, self.p, self.training, self.inplace)

    def extra_repr(self):
        return f"p={self.p}, inplace={self.inplace}"


class Dropout(_DropoutNd):
    """Zeroes each element with probability p, scaling the rest by 1 / (1 - p)."""
    _op = "dropout"


class Dropout1d(_DropoutNd):
    """Zeroes whole channels of (N, C, L)."""
    _op = "dropout1d"


class Dropout2d(_DropoutNd):
    """Zeroes whole channels (feature maps) of (N, C, H, W)."""
    _op = "dropout2d"


class Dropout3d(_DropoutNd):
    """Zeroes whole channels of (N, C, D, H, W)."""
    _op = "dropout3d"
