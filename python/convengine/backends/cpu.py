"""CPU backend: convengine._C kernels for float32 C-contiguous arrays, NumPy for the rest.

Every function takes and returns ndarrays with NumPy's semantics (broadcasting, dtype promotion);
the compiled kernel runs only when it computes exactly what NumPy would, so callers never need
to know which path ran.
"""

import numpy as np

from .. import _C


def _is_f32_contiguous(x):
    return (
        isinstance(x, np.ndarray)
        and x.dtype == np.float32
        and x.flags.c_contiguous
        and x.flags.aligned
    )


def _both_f32_same_shape(a, b):
    return _is_f32_contiguous(a) and _is_f32_contiguous(b) and a.shape == b.shape


def add(a, b):
    return _C.add(a, b) if _both_f32_same_shape(a, b) else np.add(a, b)


def sub(a, b):
    return _C.sub(a, b) if _both_f32_same_shape(a, b) else np.subtract(a, b)


def mul(a, b):
    return _C.mul(a, b) if _both_f32_same_shape(a, b) else np.multiply(a, b)


def div(a, b):
    if _both_f32_same_shape(a, b):
        return _C.div(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.divide(a, b)


def exp(x):
    if _is_f32_contiguous(x):
        return _C.exp(x)
    with np.errstate(over="ignore"):
        return np.exp(x)


def relu(x):
    return _C.relu(x) if _is_f32_contiguous(x) else np.where(x < 0, np.zeros_like(x), x)


def relu_backward(grad, x):
    if _both_f32_same_shape(grad, x):
        return _C.relu_backward(grad, x)
    return np.where(x > 0, grad, np.zeros_like(grad))


def sum_all(x):
    """Sum of every element as a 0-d array of x's dtype."""
    if _is_f32_contiguous(x):
        return np.asarray(_C.sum(x), dtype=np.float32)
    return np.asarray(np.sum(x))


def var_all(x, correction):
    """Variance of every element (divided by size - correction) as a 0-d array."""
    if _is_f32_contiguous(x) and x.size > 0:
        mean = _C.sum(x) / x.size
        divisor = max(x.size - correction, 0)  # as NumPy's ddof and PyTorch's correction
        with np.errstate(divide="ignore", invalid="ignore"):
            value = np.float64(_C.sum_squared_deviation(x, mean)) / divisor
        return np.asarray(value, dtype=np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(np.var(x, ddof=correction))


def max_all(x):
    if _is_f32_contiguous(x) and x.size > 0:
        return np.asarray(_C.max(x), dtype=np.float32)
    return np.asarray(np.max(x))


def min_all(x):
    if _is_f32_contiguous(x) and x.size > 0:
        return np.asarray(_C.min(x), dtype=np.float32)
    return np.asarray(np.min(x))


def _as_gemm_operand(x):
    """x itself when _C.sgemm reads it in place (unit stride along one axis, a positive stride
    along the other, aligned: C-contiguous arrays, transposed views, row slices), else a
    C-contiguous copy."""
    s0, s1 = x.strides
    in_place = (s1 == 4 and s0 >= 4 * x.shape[1]) or (s0 == 4 and s1 >= 4 * x.shape[0])
    return x if in_place and x.flags.aligned else np.array(x, order="C", copy=True)


def matmul(a, b):
    """np.matmul; float32 (.., M, K) @ (K, N) runs on convengine's GEMM, the leading dimensions
    of `a` folded into M: (B*M, N) = (B*M, K) @ (K, N). Other cases go to NumPy."""
    if (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == np.float32
            and b.dtype == np.float32 and a.ndim >= 2 and b.ndim == 2):
        rows = a.reshape(int(np.prod(a.shape[:-1])), a.shape[-1])  # a view when it can be
        out = _C.sgemm(_as_gemm_operand(rows), _as_gemm_operand(b))
        return out.reshape(a.shape[:-1] + (b.shape[1],))
    return np.matmul(a, b)
