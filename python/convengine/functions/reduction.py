"""Reductions: sum, mean, var, max, min over all elements or over chosen dimensions."""

import numpy as np

from ..autograd import Function
from ..backends import cpu
from .arithmetic import float_result


def resolve_dim(dim, axis, keepdim, keepdims, ndim, op):
    """Normalises PyTorch's dim/keepdim (or NumPy's axis/keepdims) to (tuple or None, bool)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"{op}: give dim or axis, not both")
        dim = axis
    if keepdims is not None:
        keepdim = keepdims
    if dim is None:
        return None, bool(keepdim)
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    if not dims:  # dim=() reduces over every dimension, as in PyTorch
        return None, bool(keepdim)
    normalized = []
    for d in dims:
        if not isinstance(d, (int, np.integer)):
            raise TypeError(f"{op}: dim must be an int or a tuple of ints, got {dim!r}")
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise ValueError(
                f"{op}: dim {d} is out of range for a tensor with {ndim} dimensions"
            )
        normalized.append(int(d) % max(ndim, 1))
    if len(set(normalized)) != len(normalized):
        raise ValueError(f"{op}: dim {dim} repeats a dimension")
    return tuple(normalized), bool(keepdim)


def resolve_correction(unbiased, correction):
    """PyTorch's var arguments: correction (default 1) or the older unbiased flag."""
    if unbiased is not None and correction is not None:
        raise TypeError("var: give unbiased or correction, not both")
    if unbiased is not None:
        return 1 if unbiased else 0
    return 1 if correction is None else correction


def _reduced_count(shape, dim):
    return int(np.prod([shape[d] for d in dim])) if dim is not None else int(np.prod(shape))


def _expand_back(grad, shape, dim, keepdim):
    """Broadcasts a reduced gradient back to the input's shape."""
    if dim is not None and not keepdim:
        grad = np.expand_dims(grad, dim)
    return np.broadcast_to(grad, shape)


class Sum(Function):
    def forward(self, x, dim=None, keepdim=False):
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        if dim is None and not keepdim:
            return cpu.sum_all(x)
        return np.sum(x, axis=dim, keepdims=keepdim)

    def backward(self, grad):
        return _expand_back(grad, self.shape, self.dim, self.keepdim)


class Mean(Function):
    def forward(self, x, dim=None, keepdim=False):
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        self.count = _reduced_count(x.shape, dim)
        if dim is None and not keepdim:
            total = cpu.sum_all(x)
        else:
            total = np.sum(x, axis=dim, keepdims=keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):  # the mean of nothing is NaN
            return float_result(np.asarray(total / self.count), x)

    def backward(self, grad):
        with np.errstate(divide="ignore", invalid="ignore"):
            return _expand_back(grad / self.count, self.shape, self.dim, self.keepdim)


class Var(Function):
    """Variance divided by n - correction, as PyTorch's var."""

    def forward(self, x, dim=None, keepdim=False, correction=1):
        self.shape, self.dim, self.keepdim = x.shape, dim, keepdim
        self.divisor = max(_reduced_count(x.shape, dim) - correction, 0)  # as PyTorch and NumPy
        if self.needs_input_grad[0]:
            self.centered = x - np.mean(x, axis=dim, keepdims=True)
        if dim is None and not keepdim:
            return float_result(cpu.var_all(x, correction), x)
        with np.errstate(divide="ignore", invalid="ignore"):
            return float_result(np.var(x, axis=dim, ddof=correction, keepdims=keepdim), x)

    def backward(self, grad):
        # d var / dx_i = 2 (x_i - mean) / (n - correction); the mean's own term sums to zero.
        grad = _expand_back(grad, self.shape, self.dim, self.keepdim)
        with np.errstate(invalid="ignore", over="ignore"):
            if self.divisor == 0:  # PyTorch's convention: infinite, NaN where x_i is the mean
                return grad * np.where(self.centered == 0, np.nan, np.inf).astype(grad.dtype)
            return grad * (2.0 / self.divisor) * self.centered


class Extremum(Function):
    """max() or min() over every element; ties share the gradient equally (as PyTorch)."""

    def forward(self, x, op):
        if x.size == 0:
            raise ValueError(f"{op}: the input is empty (shape {x.shape})")
        out = cpu.max_all(x) if op == "max" else cpu.min_all(x)
        if self.needs_input_grad[0]:
            self.winners = (x == out) | (np.isnan(out) & np.isnan(x))
        return out

    def backward(self, grad):
        return self.winners * (grad / np.count_nonzero(self.winners))


def arg_extremum(x, dim, op):
    """Index of the max (or min) along dim, kept as a length-1 axis; NaN wins, as in PyTorch."""
    if x.shape[dim] == 0:
        raise ValueError(f"{op}: dimension {dim} is empty (shape {x.shape})")
    pick = np.argmax if op == "max" else np.argmin
    return pick(x, axis=dim, keepdims=True)


def arg_reduce(x, dim, keepdim, pick):
    """argmax/argmin with PyTorch's arguments; dim=None indexes the flattened tensor."""
    if x.size == 0:
        raise ValueError(f"{pick.__name__}: the input is empty (shape {x.shape})")
    if dim is None:
        out = pick(x)
        return np.reshape(out, (1,) * x.ndim) if keepdim else np.asarray(out)
    return pick(x, axis=dim, keepdims=keepdim)
