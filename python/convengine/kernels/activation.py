"""Activation kernels, NumPy in and out: forward and backward of relu, leaky_relu, elu, gelu,
sigmoid, tanh, softmax and log_softmax.

Arrays are C-contiguous float32 of any shape (TypeError for another dtype, ValueError for a
non-contiguous view); ``out=`` may be a preallocated array of the same shape, or an input itself
to work in place. Backward passes take what PyTorch saves: the input ``x`` (relu, leaky_relu,
elu, gelu) or the output ``y`` (sigmoid, tanh, softmax, log_softmax).
"""

import numbers

import numpy as np

from .. import _C

__all__ = [
    "relu", "relu_backward",
    "leaky_relu", "leaky_relu_backward",
    "elu", "elu_backward",
    "gelu", "gelu_backward",
    "sigmoid", "sigmoid_backward",
    "tanh", "tanh_backward",
    "softmax", "softmax_backward",
    "log_softmax", "log_softmax_backward",
]

_APPROXIMATIONS = ("none", "tanh")


def _check(x, op, name="x"):
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: argument '{name}' must be a numpy.ndarray, got "
                        f"{type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(f"{op}: argument '{name}' must have dtype float32, got {x.dtype}")


def _number(value, op, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{op}: argument '{name}' must be a number, got {value!r}")
    return float(value)


def _approximate(approximate, op):
    if approximate not in _APPROXIMATIONS:
        raise ValueError(f"{op}: argument 'approximate' must be 'none' or 'tanh', got "
                         f"{approximate!r}")
    return approximate


def _dim(dim, ndim, op):
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{op}: argument 'dim' must be an int, got {dim!r}")
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise ValueError(f"{op}: argument 'dim' is {dim}, out of range for an array of {ndim} "
                         f"dimensions (expected in [{-rank}, {rank - 1}])")
    return int(dim)


def relu(x, out=None):
    """max(x, 0); NaN stays NaN."""
    _check(x, "relu")
    return _C.relu(x, out)


def relu_backward(grad, x, out=None):
    """grad where x > 0, else 0."""
    _check(grad, "relu_backward", "grad")
    _check(x, "relu_backward")
    return _C.relu_backward(grad, x, out)


def leaky_relu(x, negative_slope=0.01, out=None):
    """x where x > 0, else negative_slope * x."""
    _check(x, "leaky_relu")
    return _C.leaky_relu(x, _number(negative_slope, "leaky_relu", "negative_slope"), out)


def leaky_relu_backward(grad, x, negative_slope=0.01, out=None):
    _check(grad, "leaky_relu_backward", "grad")
    _check(x, "leaky_relu_backward")
    return _C.leaky_relu_backward(
        grad, x, _number(negative_slope, "leaky_relu_backward", "negative_slope"), out)


def elu(x, alpha=1.0, out=None):
    """x where x > 0, else alpha * (exp(x) - 1) (computed as expm1)."""
    _check(x, "elu")
    return _C.elu(x, _number(alpha, "elu", "alpha"), out)


def elu_backward(grad, x, alpha=1.0, out=None):
    _check(grad, "elu_backward", "grad")
    _check(x, "elu_backward")
    return _C.elu_backward(grad, x, _number(alpha, "elu_backward", "alpha"), out)


def gelu(x, approximate="none", out=None):
    """x * Phi(x) (approximate='none'), or 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""
    _check(x, "gelu")
    return _C.gelu(x, _approximate(approximate, "gelu"), out)


def gelu_backward(grad, x, approximate="none", out=None):
    _check(grad, "gelu_backward", "grad")
    _check(x, "gelu_backward")
    return _C.gelu_backward(grad, x, _approximate(approximate, "gelu_backward"), out)


def sigmoid(x, out=None):
    _check(x, "sigmoid")
    return _C.sigmoid(x, out)


def sigmoid_backward(grad, y, out=None):
    """grad * y * (1 - y), from the output y = sigmoid(x)."""
    _check(grad, "sigmoid_backward", "grad")
    _check(y, "sigmoid_backward", "y")
    return _C.sigmoid_backward(grad, y, out)


def tanh(x, out=None):
    _check(x, "tanh")
    return _C.tanh(x, out)


def tanh_backward(grad, y, out=None):
    """grad * (1 - y^2), from the output y = tanh(x)."""
    _check(grad, "tanh_backward", "grad")
    _check(y, "tanh_backward", "y")
    return _C.tanh_backward(grad, y, out)


def softmax(x, dim, out=None):
    """exp(x - max) / sum(exp(x - max)) along dim."""
    _check(x, "softmax")
    return _C.softmax(x, _dim(dim, x.ndim, "softmax"), out)


def softmax_backward(grad, y, dim, out=None):
    """y * (grad - sum(grad * y, dim)), from the output y = softmax(x, dim)."""
    _check(grad, "softmax_backward", "grad")
    _check(y, "softmax_backward", "y")
    return _C.softmax_backward(grad, y, _dim(dim, y.ndim, "softmax_backward"), out)


def log_softmax(x, dim, out=None):
    """x - max - log(sum(exp(x - max))) along dim."""
    _check(x, "log_softmax")
    return _C.log_softmax(x, _dim(dim, x.ndim, "log_softmax"), out)


def log_softmax_backward(grad, y, dim, out=None):
    """grad - exp(y) * sum(grad, dim), from the output y = log_softmax(x, dim)."""
    _check(grad, "log_softmax_backward", "grad")
    _check(y, "log_softmax_backward", "y")
    return _C.log_softmax_backward(grad, y, _dim(dim, y.ndim, "log_softmax_backward"), out)
