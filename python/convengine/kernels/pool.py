"""Pooling kernels, NumPy in and out: max, average, adaptive, global average and max_unpool,
forward and each backward pass.

Arrays are C-contiguous float32 ``(N, C, *spatial)`` with 1, 2 or 3 spatial dims (a copy is
never made silently: a wrong dtype raises TypeError, a non-contiguous array ValueError); indices
are int64 flat positions within each (N, C) plane, exactly as PyTorch's ``return_indices``.
Window arguments are an int or one int per spatial dim; ``stride=None`` means the kernel size.
Semantics are PyTorch's (``torch.nn.functional``); ``convengine.backends.reference`` is the
NumPy oracle they are tested against. Every function takes an optional preallocated ``out=``
(and ``indices=``) of the exact output shape.
"""

import numbers

import numpy as np

from .. import _C
from ..backends import reference

__all__ = [
    "pool_output_shape",
    "max_pool_forward",
    "max_pool_backward",
    "avg_pool_forward",
    "avg_pool_backward",
    "adaptive_avg_pool_forward",
    "adaptive_avg_pool_backward",
    "adaptive_max_pool_forward",
    "adaptive_max_pool_backward",
    "global_avg_pool_forward",
    "global_avg_pool_backward",
    "max_unpool_forward",
    "max_unpool_backward",
]


# ----- argument checks (shared with convengine.functions.pooling) ------------------------------

def _is_int(v):
    # `type(v) is int` first: the abstract-class check costs about a microsecond per call
    return type(v) is int or (isinstance(v, numbers.Integral)
                               and not isinstance(v, (bool, np.bool_)))


def int_tuple(value, nd, op, name, minimum):
    """An int or a sequence of ``nd`` ints, each >= ``minimum``, as a tuple of ``nd`` ints."""
    if _is_int(value):
        values = (int(value),) * nd
    elif isinstance(value, (tuple, list)):
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{op}: argument '{name}' must be an int or a tuple of {nd} ints, "
                            f"got {value!r}")
        if len(value) == 1 and nd > 1:
            value = tuple(value) * nd  # PyTorch accepts a 1-tuple for every dim
        if len(value) != nd:
            raise ValueError(f"{op}: argument '{name}' must be an int or a tuple of {nd} ints "
                             f"(one per spatial dim), got {tuple(value)}")
        values = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{op}: argument '{name}' must be an int or a tuple of {nd} ints, "
                        f"got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{op}: argument '{name}' must be >= {minimum} in every dim, "
                         f"got {values}")
    return values


def window_args(op, spatial, kernel_size, stride, padding, dilation=1, ceil_mode=False):
    """Checks a pooling window for an input of spatial size ``spatial``; returns
    (kernel, stride, padding, dilation, out_spatial) as tuples of ints."""
    nd = len(spatial)
    kernel = int_tuple(kernel_size, nd, op, "kernel_size", 1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        stride = kernel
    else:
        stride = int_tuple(stride, nd, op, "stride", 1)
    pad = int_tuple(padding, nd, op, "padding", 0)
    dilation = int_tuple(dilation, nd, op, "dilation", 1)
    for p, k in zip(pad, kernel):
        if p > k // 2:
            raise ValueError(f"{op}: argument 'padding' must be at most half of kernel_size "
                             f"(padding <= kernel_size // 2), got padding={pad}, "
                             f"kernel_size={kernel}")
    out = reference.output_size(tuple(spatial), kernel, stride, pad, dilation, bool(ceil_mode),
                                op=op)
    return kernel, stride, pad, dilation, out


def divisor_arg(divisor_override, op):
    if divisor_override is None:
        return None
    if not _is_int(divisor_override):
        raise TypeError(f"{op}: argument 'divisor_override' must be an int or None, got "
                        f"{divisor_override!r}")
    if divisor_override == 0:
        raise ValueError(f"{op}: argument 'divisor_override' must not be zero")
    return int(divisor_override)


def check_array(x, op, name="x"):
    """x must be a float32 ndarray (N, C, *spatial) with 1-3 spatial dims; returns nd."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: argument '{name}' must be a numpy.ndarray, got "
                        f"{type(x).__name__}")
    if x.dtype != np.float32:
        raise TypeError(f"{op}: argument '{name}' must have dtype float32, got {x.dtype}")
    if x.ndim not in (3, 4, 5):
        raise ValueError(f"{op}: argument '{name}' must be 3-D, 4-D or 5-D (N, C, *spatial), "
                         f"got shape {x.shape}")
    if 0 in x.shape[2:]:
        raise ValueError(f"{op}: argument '{name}' has an empty spatial dim, shape {x.shape}")
    return x.ndim - 2


def check_indices(indices, shape, op, name="indices"):
    if not isinstance(indices, np.ndarray):
        raise TypeError(f"{op}: argument '{name}' must be a numpy.ndarray, got "
                        f"{type(indices).__name__}")
    if indices.dtype != np.int64:
        raise TypeError(f"{op}: argument '{name}' must have dtype int64, got {indices.dtype}")
    if indices.shape != tuple(shape):
        raise ValueError(f"{op}: argument '{name}' must have shape {tuple(shape)}, got "
                         f"{indices.shape}")


def adaptive_output_size(output_size, spatial, op):
    """PyTorch's output_size: an int, or a tuple whose None entries keep the input size."""
    nd = len(spatial)
    if type(output_size) is tuple and len(output_size) == nd and all(
            type(o) is int and o > 0 for o in output_size):
        return output_size  # the common case, checked cheaply (global pooling is microseconds)
    if _is_int(output_size) or output_size is None:
        output_size = (output_size,) * nd
    if not isinstance(output_size, (tuple, list)) or len(output_size) != nd:
        raise ValueError(f"{op}: argument 'output_size' must be an int or a tuple of {nd} "
                         f"ints, got {output_size!r}")
    sizes = []
    for o, n in zip(output_size, spatial):
        if o is None:
            o = n
        if not _is_int(o):
            raise TypeError(f"{op}: argument 'output_size' must contain ints (or None), got "
                            f"{output_size!r}")
        if o <= 0:
            raise ValueError(f"{op}: argument 'output_size' must be >= 1 in every dim, got "
                             f"{tuple(output_size)}")
        sizes.append(int(o))
    return tuple(sizes)


def pool_output_shape(input_shape, kernel_size, stride=None, padding=0, dilation=1,
                      ceil_mode=False):
    """The output shape (N, C, *out) of max or average pooling; checks every argument."""
    input_shape = tuple(input_shape)
    kernel, stride, pad, dilation, out = window_args(
        "pool_output_shape", input_shape[2:], kernel_size, stride, padding, dilation, ceil_mode)
    return input_shape[:2] + out


# ----- max pooling -----------------------------------------------------------------------------

def max_pool_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
                     return_indices=False, out=None, indices=None):
    """Max pooling: x (N, C, *in) -> out (N, C, *out), plus int64 indices if return_indices."""
    op = "max_pool_forward"
    check_array(x, op)
    kernel, stride, pad, dilation, _ = window_args(op, x.shape[2:], kernel_size, stride, padding,
                                                   dilation, ceil_mode)
    return _C.max_pool_forward(x, kernel, stride, pad, dilation, bool(ceil_mode),
                               bool(return_indices), out, indices)


def max_pool_backward(grad_out, indices, input_shape, out=None):
    """Gradient of max pooling: grad_out (N, C, *out) added at the indices of a zero
    (N, C, *in) array (index -1, a window with no input element, is skipped)."""
    op = "max_pool_backward"
    check_array(grad_out, op, "grad_out")
    check_indices(indices, grad_out.shape, op)
    return _C.max_pool_backward(grad_out, indices, tuple(int(s) for s in input_shape), out)


# ----- average pooling -------------------------------------------------------------------------

def avg_pool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True, divisor_override=None, out=None):
    """Average pooling: x (N, C, *in) -> (N, C, *out), with PyTorch's divisor rules."""
    op = "avg_pool_forward"
    check_array(x, op)
    kernel, stride, pad, _, _ = window_args(op, x.shape[2:], kernel_size, stride, padding, 1,
                                            ceil_mode)
    return _C.avg_pool_forward(x, kernel, stride, pad, bool(ceil_mode), bool(count_include_pad),
                               divisor_arg(divisor_override, op), out)


def avg_pool_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                      ceil_mode=False, count_include_pad=True, divisor_override=None, out=None):
    """Gradient of average pooling: grad_out (N, C, *out) -> (N, C, *in)."""
    op = "avg_pool_backward"
    check_array(grad_out, op, "grad_out")
    input_shape = tuple(int(s) for s in input_shape)
    kernel, stride, pad, _, _ = window_args(op, input_shape[2:], kernel_size, stride, padding,
                                            1, ceil_mode)
    return _C.avg_pool_backward(grad_out, input_shape, kernel, stride, pad, bool(ceil_mode),
                                bool(count_include_pad), divisor_arg(divisor_override, op), out)


# ----- adaptive and global pooling -------------------------------------------------------------

def adaptive_avg_pool_forward(x, output_size, out=None):
    """Adaptive average pooling: x (N, C, *in) -> (N, C, *output_size); output bin i of a dim
    of size n covers [floor(i*n/out), ceil((i+1)*n/out))."""
    op = "adaptive_avg_pool_forward"
    check_array(x, op)
    return _C.adaptive_avg_pool_forward(x, adaptive_output_size(output_size, x.shape[2:], op),
                                        out)


def adaptive_avg_pool_backward(grad_out, input_shape, out=None):
    """Gradient of adaptive average pooling: grad_out (N, C, *output_size) -> input_shape."""
    op = "adaptive_avg_pool_backward"
    check_array(grad_out, op, "grad_out")
    return _C.adaptive_avg_pool_backward(grad_out, tuple(int(s) for s in input_shape), out)


def adaptive_max_pool_forward(x, output_size, return_indices=False, out=None, indices=None):
    """Adaptive max pooling: x (N, C, *in) -> (N, C, *output_size) (+ int64 indices)."""
    op = "adaptive_max_pool_forward"
    check_array(x, op)
    return _C.adaptive_max_pool_forward(x, adaptive_output_size(output_size, x.shape[2:], op),
                                        bool(return_indices), out, indices)


def adaptive_max_pool_backward(grad_out, indices, input_shape, out=None):
    """Gradient of adaptive max pooling (the same scatter as max_pool_backward)."""
    return max_pool_backward(grad_out, indices, input_shape, out)


def global_avg_pool_forward(x, out=None):
    """Mean over every spatial dim: x (N, C, *in) -> (N, C, 1, ..., 1)."""
    op = "global_avg_pool_forward"
    nd = check_array(x, op)
    return _C.adaptive_avg_pool_forward(x, (1,) * nd, out)


def global_avg_pool_backward(grad_out, input_shape, out=None):
    """Gradient of global average pooling: grad_out (N, C, 1, ..., 1) -> input_shape."""
    return adaptive_avg_pool_backward(grad_out, input_shape, out)


# ----- max unpooling ---------------------------------------------------------------------------

def max_unpool_forward(x, indices, output_size, out=None):
    """Max unpooling: zeros of (N, C, *output_size) with x (N, C, *in) written at its int64
    indices (flat positions within each output plane, as max_pool_forward returns them)."""
    op = "max_unpool_forward"
    nd = check_array(x, op)
    check_indices(indices, x.shape, op)
    output_size = int_tuple(tuple(output_size)[-nd:] if not _is_int(output_size)
                            else output_size, nd, op, "output_size", 1)
    return _C.max_unpool_forward(x, indices, output_size, out)


def max_unpool_backward(grad_out, indices, out=None):
    """Gradient of max unpooling: grad_out (N, C, *output_size) read at the indices -> the
    shape of indices."""
    op = "max_unpool_backward"
    check_array(grad_out, op, "grad_out")
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
        raise TypeError(f"{op}: argument 'indices' must be an int64 numpy.ndarray")
    return _C.max_unpool_backward(grad_out, indices, out)
