"""Creating tensors: from data, filled, random (with a seedable generator), ranges."""

import numbers

import numpy as np

from .tensor import Tensor

__all__ = ["tensor", "as_tensor", "zeros", "ones", "full", "zeros_like", "ones_like", "randn",
           "rand", "arange", "manual_seed", "default_generator"]

_generator = np.random.default_rng()


def manual_seed(seed):
    """Seeds the generator behind randn, rand and everything else that draws random numbers."""
    global _generator
    if not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def default_generator():
    """The numpy.random.Generator that manual_seed seeds."""
    return _generator


def _dtype(dtype, default=np.float32):
    return np.dtype(default if dtype is None else dtype)


def _size(args, op):
    size = args[0] if len(args) == 1 and isinstance(args[0], (tuple, list)) else args
    if not all(isinstance(n, numbers.Integral) and n >= 0 for n in size):
        raise ValueError(f"{op}: size must be non-negative ints, got {tuple(size)}")
    return tuple(int(n) for n in size)


def tensor(data, dtype=None, requires_grad=False):
    """A new tensor holding a copy of `data`.

    Without dtype: an ndarray or Tensor keeps its dtype; Python floats become float32 and
    Python ints int64, as in PyTorch.
    """
    if isinstance(data, Tensor):
        data = data.data
    keeps_dtype = isinstance(data, (np.ndarray, np.generic))
    array = np.array(data, dtype=None if dtype is None else np.dtype(dtype), copy=True)
    if dtype is None and not keeps_dtype and array.dtype == np.float64:
        array = array.astype(np.float32)
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(data, dtype=None):
    """`data` as a Tensor, without copying when it already is one (or an ndarray of dtype)."""
    if isinstance(data, Tensor) and (dtype is None or data.dtype == np.dtype(dtype)):
        return data
    if isinstance(data, np.ndarray) and (dtype is None or data.dtype == np.dtype(dtype)):
        return Tensor(data)
    return tensor(data, dtype=dtype)


def zeros(*size, dtype=None, requires_grad=False):
    return Tensor(np.zeros(_size(size, "zeros"), _dtype(dtype)), requires_grad=requires_grad)


def ones(*size, dtype=None, requires_grad=False):
    return Tensor(np.ones(_size(size, "ones"), _dtype(dtype)), requires_grad=requires_grad)


def full(size, fill_value, dtype=None, requires_grad=False):
    """A tensor of `size` filled with fill_value; without dtype, bool, int64 or float32 as the
    fill value is a bool, an int or a float (as in PyTorch)."""
    if dtype is None:
        dtype = tensor(fill_value).dtype
    return Tensor(np.full(_size((size,), "full"), fill_value, np.dtype(dtype)),
                  requires_grad=requires_grad)


def zeros_like(t, dtype=None, requires_grad=False):
    return zeros(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def ones_like(t, dtype=None, requires_grad=False):
    return ones(t.shape, dtype=t.dtype if dtype is None else dtype, requires_grad=requires_grad)


def randn(*size, dtype=None, requires_grad=False, generator=None):
    """Standard normal samples (float32 unless dtype says otherwise)."""
    rng = generator or _generator
    data = rng.standard_normal(_size(size, "randn"), dtype=np.float64).astype(_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


def rand(*size, dtype=None, requires_grad=False, generator=None):
    """Uniform samples in [0, 1) (float32 unless dtype says otherwise)."""
    rng = generator or _generator
    data = rng.random(_size(size, "rand"), dtype=np.float64).astype(_dtype(dtype))
    return Tensor(data, requires_grad=requires_grad)


def arange(start, end=None, step=1, dtype=None, requires_grad=False):
    """Values from start (default 0) up to end, exclusive; int64 for ints, else float32."""
    if end is None:
        start, end = 0, start
    if step == 0:
        raise ValueError("arange: step must be non-zero")
    if dtype is None:
        integral = all(isinstance(v, numbers.Integral) for v in (start, end, step))
        dtype = np.int64 if integral else np.float32
    return Tensor(np.arange(start, end, step, dtype=np.dtype(dtype)), requires_grad=requires_grad)
