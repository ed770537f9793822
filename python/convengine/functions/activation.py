"""Activations: leaky_relu, elu, gelu, sigmoid, tanh, softmax, log_softmax; forward and
backward side by side (relu lives in pointwise.py).

float32 runs the C++ kernels (convengine.kernels.activation); float64 runs the NumPy formulas
here, written the numerically stable way, so that gradcheck works in float64. Each Function
saves what PyTorch saves for backward: the input (leaky_relu, elu, gelu) or the output
(sigmoid, tanh, softmax, log_softmax), and only when a gradient is needed.
"""

import math

import numpy as np

from ..autograd import Function
from ..kernels import activation as kernels


def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def _is_f32(x):
    """float32 forward: the C++ kernels run both ways (self.fast); else NumPy."""
    return x.dtype == np.float32


def _erfc(x):
    """erfc for float64 arrays (scipy when installed, else math.erfc element by element)."""
    try:
        from scipy.special import erfc
    except ImportError:
        return np.vectorize(math.erfc, otypes=[x.dtype])(x)
    return erfc(x)


def _normal_cdf(x):
    return 0.5 * _erfc(-x / math.sqrt(2.0))


_GELU_BETA = math.sqrt(2.0 / math.pi)
_GELU_KAPPA = 0.044715


class LeakyReLU(Function):
    def forward(self, x, negative_slope):
        self.fast = _is_f32(x)
        self.slope = negative_slope
        if self.fast:
            x = _f32(x)
            out = kernels.leaky_relu(x, negative_slope)
        else:
            out = np.where(x > 0, x, x * negative_slope)
        self.x = x if self.needs_input_grad[0] else None
        return out

    def backward(self, grad):
        if self.fast:
            return kernels.leaky_relu_backward(_f32(grad), self.x, self.slope)
        return np.where(self.x > 0, grad, grad * self.slope)


class ELU(Function):
    def forward(self, x, alpha):
        self.fast = _is_f32(x)
        self.alpha = alpha
        if self.fast:
            x = _f32(x)
            out = kernels.elu(x, alpha)
        else:
            with np.errstate(over="ignore"):
                out = np.where(x <= 0, alpha * np.expm1(np.minimum(x, 0)), x)
        self.x = x if self.needs_input_grad[0] else None
        return out

    def backward(self, grad):
        if self.fast:
            return kernels.elu_backward(_f32(grad), self.x, self.alpha)
        return np.where(self.x <= 0, grad * self.alpha * np.exp(np.minimum(self.x, 0)), grad)


class GELU(Function):
    """approximate='none': x * Phi(x); 'tanh': 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))."""

    def forward(self, x, approximate="none"):
        self.fast = _is_f32(x)
        self.approximate = approximate
        if self.fast:
            x = _f32(x)
            out = kernels.gelu(x, approximate)
        elif approximate == "tanh":
            out = 0.5 * x * (1.0 + np.tanh(_GELU_BETA * (x + _GELU_KAPPA * x ** 3)))
        else:
            out = x * _normal_cdf(x)
        self.x = x if self.needs_input_grad[0] else None
        return out

    def backward(self, grad):
        x = self.x
        if self.fast:
            return kernels.gelu_backward(_f32(grad), x, self.approximate)
        if self.approximate == "tanh":
            t = np.tanh(_GELU_BETA * (x + _GELU_KAPPA * x ** 3))
            du = _GELU_BETA * (1.0 + 3.0 * _GELU_KAPPA * x * x)
            return grad * (0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * du)
        pdf = np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)
        return grad * (_normal_cdf(x) + x * pdf)


class Sigmoid(Function):
    def forward(self, x):
        self.fast = _is_f32(x)
        if self.fast:
            out = kernels.sigmoid(_f32(x))
        else:
            e = np.exp(-np.abs(x))  # in (0, 1]: never overflows
            out = np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))
        self.y = out if self.needs_input_grad[0] else None
        return out

    def backward(self, grad):
        if self.fast:
            return kernels.sigmoid_backward(_f32(grad), self.y)
        return grad * self.y * (1.0 - self.y)


class Tanh(Function):
    def forward(self, x):
        self.fast = _is_f32(x)
        out = kernels.tanh(_f32(x)) if self.fast else np.tanh(x)
        self.y = out if self.needs_input_grad[0] else None
        return out

    def backward(self, grad):
        if self.fast:
            return kernels.tanh_backward(_f32(grad), self.y)
        return grad * (1.0 - self.y * self.y)


class Softmax(Function):
    """softmax (log=False) or log_softmax (log=True) along dim, saving the output."""

    def forward(self, x, dim, log=False):
        self.fast = _is_f32(x)
        self.dim, self.log = dim, log
        if self.fast:
            fn = kernels.log_softmax if log else kernels.softmax
            out = fn(_f32(x), dim)
        else:
            axis = dim if x.ndim else None
            with np.errstate(invalid="ignore"):
                shifted = x - np.max(x, axis=axis, keepdims=True)
                if log:
                    out = shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))
                else:
                    e = np.exp(shifted)
                    out = e / np.sum(e, axis=axis, keepdims=True)
        self.y = out if self.needs_input_grad[0] else None
        return out

    def backward(self, grad):
        y = self.y
        if self.fast:
            fn = kernels.log_softmax_backward if self.log else kernels.softmax_backward
            return fn(_f32(grad), y, self.dim)
        axis = self.dim if y.ndim else None
        if self.log:
            return grad - np.exp(y) * np.sum(grad, axis=axis, keepdims=True)
        return y * (grad - np.sum(grad * y, axis=axis, keepdims=True))


# ----- front ends for convengine.nn.functional -------------------------------------------------

def _input(input, op):
    from ..creation import as_tensor

    x = as_tensor(input)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: argument 'input' must be a float32 or float64 tensor, got "
                        f"dtype {x.dtype}")
    return x


def _number(value, op, name):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: argument '{name}' must be a number, got {value!r}")
    return float(value)


def _in_place(x, out, op):
    """inplace=True: writes out's values into x and returns x (outside autograd only)."""
    from ..autograd import is_grad_enabled

    if is_grad_enabled() and (x.requires_grad or out.requires_grad):
        raise RuntimeError(f"{op}: inplace=True is not supported on a tensor that records "
                           f"gradients; use inplace=False")
    np.copyto(x.data, out.data)
    return x


def leaky_relu(input, negative_slope=0.01, inplace=False):
    x = _input(input, "leaky_relu")
    out = LeakyReLU.apply(x, negative_slope=_number(negative_slope, "leaky_relu",
                                                    "negative_slope"))
    return _in_place(x, out, "leaky_relu") if inplace else out


def elu(input, alpha=1.0, inplace=False):
    x = _input(input, "elu")
    out = ELU.apply(x, alpha=_number(alpha, "elu", "alpha"))
    return _in_place(x, out, "elu") if inplace else out


def gelu(input, approximate="none"):
    x = _input(input, "gelu")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"gelu: argument 'approximate' must be 'none' or 'tanh', got "
                         f"{approximate!r}")
    return GELU.apply(x, approximate=approximate)


def sigmoid(input):
    return Sigmoid.apply(_input(input, "sigmoid"))


def tanh(input):
    return Tanh.apply(_input(input, "tanh"))


def softmax_dim(dim, ndim, op):
    """dim normalised to [0, ndim); None picks PyTorch's legacy implicit dim, with its warning."""
    if dim is None:
        import warnings

        warnings.warn(f"Implicit dimension choice for {op} has been deprecated. Change the call "
                      f"to include dim=X as an argument.", UserWarning, stacklevel=4)
        return 0 if ndim in (0, 1, 3) else 1
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: argument 'dim' must be an int, got {dim!r}")
    rank = max(ndim, 1)
    if not -rank <= dim < rank:
        raise ValueError(f"{op}: argument 'dim' is {dim}, out of range for a tensor of {ndim} "
                         f"dimensions (expected in [{-rank}, {rank - 1}])")
    return int(dim) % rank


def softmax(input, dim=None, dtype=None, log=False):
    op = "log_softmax" if log else "softmax"
    if dtype is not None:  # PyTorch casts first (so an integer input with dtype= works)
        from ..creation import as_tensor

        input = as_tensor(input).to(dtype)
    x = _input(input, op)
    return Softmax.apply(x, dim=softmax_dim(dim, x.ndim, op), log=log)
