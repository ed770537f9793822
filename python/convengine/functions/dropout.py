"""Dropout: zeroes elements (or whole channels) with probability p during training and scales
the survivors by 1 / (1 - p), drawing from convengine's seeded generator (manual_seed)."""

import numbers
import warnings

import numpy as np

from ..autograd import Function
from ..creation import as_tensor, default_generator

__all__ = ["DropoutFunction", "dropout", "dropout1d", "dropout2d", "dropout3d"]


class DropoutFunction(Function):
    """out = x * mask, where mask (broadcastable to x) holds 0 or 1 / (1 - p)."""

    def forward(self, x, mask):
        self.mask = mask if self.needs_input_grad[0] else None
        return x * mask

    def backward(self, grad):
        return grad * self.mask, None


def _check_p(p, op):
    if not isinstance(p, numbers.Real) or not 0 <= p <= 1:
        raise ValueError(f"{op}: dropout probability p has to be between 0 and 1, but got {p}")


def _dropout(input, p, training, mask_shape, op, generator):
    _check_p(p, op)
    input = as_tensor(input)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {input.dtype}")
    if not training or p == 0:
        return input
    rng = generator if generator is not None else default_generator()
    if p == 1:
        mask = np.zeros(mask_shape, dtype=input.dtype)
    else:
        keep = rng.random(mask_shape, dtype=np.float32 if input.dtype == np.float32
                          else np.float64) >= p
        mask = keep.astype(input.dtype) * input.dtype.type(1.0 / (1.0 - p))
    return DropoutFunction.apply(input, mask)


def dropout(input, p=0.5, training=True, inplace=False, generator=None):
    """Zeroes each element with probability p (training only); survivors scaled by 1/(1-p)."""
    input = as_tensor(input)
    return _dropout(input, p, training, input.shape, "dropout", generator)


def _channel_mask_shape(shape, batched_ndim, op):
    """(N, C, 1, ...) for a batched input, (C, 1, ...) for an unbatched one."""
    if len(shape) not in (batched_ndim, batched_ndim - 1):
        raise ValueError(f"{op}: expected a {batched_ndim - 1}-D (unbatched) or "
                         f"{batched_ndim}-D (batched) input, got shape {tuple(shape)}")
    keep = 2 if len(shape) == batched_ndim else 1
    return tuple(shape[:keep]) + (1,) * (len(shape) - keep)


def dropout1d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zeroes whole channels of (N, C, L) or (C, L) inputs."""
    input = as_tensor(input)
    shape = _channel_mask_shape(input.shape, 3, "dropout1d")
    return _dropout(input, p, training, shape, "dropout1d", generator)


def dropout2d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zeroes whole channels of (N, C, H, W) inputs; a 3-D input is taken as (N, C, L), as
    PyTorch does for historical reasons."""
    input = as_tensor(input)
    if input.ndim == 3:
        warnings.warn("dropout2d: received a 3-D input; treating it as (N, C, L) and dropping "
                      "channels (use dropout1d for that)", UserWarning, stacklevel=2)
        shape = input.shape[:2] + (1,)
    else:
        shape = _channel_mask_shape(input.shape, 4, "dropout2d")
    return _dropout(input, p, training, shape, "dropout2d", generator)


def dropout3d(input, p=0.5, training=True, inplace=False, generator=None):
    """Zeroes whole channels of (N, C, D, H, W) or (C, D, H, W) inputs."""
    input = as_tensor(input)
    shape = _channel_mask_shape(input.shape, 5, "dropout3d")
    return _dropout(input, p, training, shape, "dropout3d", generator)
