"""Pooling: max, average, adaptive average/max and max_unpool, forward and backward side by side.

Every Function works on batched arrays (N, C, *spatial) with 1-3 spatial dims; the wrappers in
convengine.nn.functional check the arguments (naming the op), add and remove the batch dim of an
unbatched (C, *spatial) input, and pass normalised tuples. float32 runs the C++ kernels
(convengine.kernels.pool); float64 runs NumPy (the reference backend, or the small helpers at
the end of this file), so that gradcheck works in float64.
"""

import numpy as np

from ..autograd import Function
from ..backends import reference
from ..kernels import pool as kernels


def _f32(a):
    return np.ascontiguousarray(a, dtype=np.float32)


def _is_f32(x):
    """float32 forward: the C++ kernels run both ways (self.fast); else NumPy."""
    return x.dtype == np.float32


class MaxPool(Function):
    """Max pooling; saves only the int64 indices (and the input shape) for backward.

    ``indices_sink``, when given, is a list that receives the indices (return_indices=True).
    """

    def forward(self, x, kernel, stride, padding, dilation, ceil_mode, indices_sink=None):
        self.fast = _is_f32(x)
        need_indices = self.needs_input_grad[0] or indices_sink is not None
        if self.fast:
            result = kernels.max_pool_forward(_f32(x), kernel, stride, padding, dilation,
                                              ceil_mode, return_indices=need_indices)
            out, indices = result if need_indices else (result, None)
        else:
            out, indices = reference.max_pool_forward(x, kernel, stride, padding, dilation,
                                                      ceil_mode)
        if self.needs_input_grad[0]:
            self.indices, self.input_shape = indices, x.shape
        if indices_sink is not None:
            indices_sink.append(indices)
        return out

    def backward(self, grad):
        if self.fast:
            return kernels.max_pool_backward(_f32(grad), self.indices, self.input_shape)
        return _scatter_add(grad, self.indices, self.input_shape)


class AvgPool(Function):
    """Average pooling; backward needs only the window parameters and the input shape."""

    def forward(self, x, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override):
        self.fast = _is_f32(x)
        self.params = (kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
        self.input_shape = x.shape
        if self.fast:
            return kernels.avg_pool_forward(_f32(x), *self.params)
        return reference.avg_pool_forward(x, *self.params)

    def backward(self, grad):
        if self.fast:
            return kernels.avg_pool_backward(_f32(grad), self.input_shape, *self.params)
        return reference.avg_pool_backward(grad, self.input_shape, *self.params)


class AdaptiveAvgPool(Function):
    def forward(self, x, output_size):
        self.fast = _is_f32(x)
        self.input_shape = x.shape
        if self.fast:
            return kernels.adaptive_avg_pool_forward(_f32(x), output_size)
        return _adaptive_avg_numpy(x, output_size)

    def backward(self, grad):
        if self.fast:
            return kernels.adaptive_avg_pool_backward(_f32(grad), self.input_shape)
        return _adaptive_avg_backward_numpy(grad, self.input_shape)


class AdaptiveMaxPool(Function):
    def forward(self, x, output_size, indices_sink=None):
        self.fast = _is_f32(x)
        need_indices = self.needs_input_grad[0] or indices_sink is not None
        if self.fast:
            result = kernels.adaptive_max_pool_forward(_f32(x), output_size,
                                                       return_indices=need_indices)
            out, indices = result if need_indices else (result, None)
        else:
            out, indices = _adaptive_max_numpy(x, output_size)
        if self.needs_input_grad[0]:
            self.indices, self.input_shape = indices, x.shape
        if indices_sink is not None:
            indices_sink.append(indices)
        return out

    def backward(self, grad):
        if self.fast:
            return kernels.max_pool_backward(_f32(grad), self.indices, self.input_shape)
        return _scatter_add(grad, self.indices, self.input_shape)


class MaxUnpool(Function):
    """Writes x at the indices of a zero (N, C, *output_size); backward gathers at them."""

    def forward(self, x, indices, output_size):
        self.fast = _is_f32(x)
        self.indices = indices if self.needs_input_grad[0] else None
        if self.fast:
            return kernels.max_unpool_forward(_f32(x), indices, output_size)
        planes = x.shape[0] * x.shape[1]
        full = int(np.prod(output_size))
        if indices.size and (indices.min() < 0 or indices.max() >= full):
            raise ValueError(f"max_unpool: indices must be in [0, {full}) for output size "
                             f"{tuple(output_size)}, got range [{indices.min()}, "
                             f"{indices.max()}]")
        out = np.zeros((planes, full), dtype=x.dtype)
        out[np.arange(planes)[:, None], indices.reshape(planes, -1)] = x.reshape(planes, -1)
        return out.reshape(x.shape[:2] + tuple(output_size))

    def backward(self, grad):
        if self.fast:
            return kernels.max_unpool_backward(_f32(grad), self.indices)
        planes = grad.shape[0] * grad.shape[1]
        flat = np.take_along_axis(grad.reshape(planes, -1), self.indices.reshape(planes, -1),
                                  axis=1)
        return flat.reshape(self.indices.shape)


# ----- float64 helpers (NumPy) -----------------------------------------------------------------

def _scatter_add(grad, indices, input_shape):
    """grad_x[n, c].flat[indices[n, c, p]] += grad[n, c, p]; index -1 (empty window) skipped."""
    planes = input_shape[0] * input_shape[1]
    gx = np.zeros((planes, int(np.prod(input_shape[2:]))), dtype=grad.dtype)
    idx = indices.reshape(planes, -1)
    rows = np.broadcast_to(np.arange(planes)[:, None], idx.shape)
    keep = idx >= 0
    np.add.at(gx, (rows[keep], idx[keep]), grad.reshape(planes, -1)[keep])
    return gx.reshape(input_shape)


def _bins(n, out):
    """Start and end of each adaptive bin: [floor(i*n/out), ceil((i+1)*n/out))."""
    i = np.arange(out)
    return (i * n) // out, ((i + 1) * n + out - 1) // out


def _averaging_matrix(n, out, dtype):
    """(out, n) matrix whose row i averages bin i: adaptive average pooling is separable."""
    start, end = _bins(n, out)
    j = np.arange(n)
    inside = (j >= start[:, None]) & (j < end[:, None])
    return inside / (end - start)[:, None].astype(dtype)


def _adaptive_avg_numpy(x, output_size):
    out = x
    for d, o in enumerate(output_size):
        m = _averaging_matrix(x.shape[2 + d], o, x.dtype)        # (o, n)
        out = np.moveaxis(np.tensordot(m, out, axes=([1], [2 + d])), 0, 2 + d)
    return out


def _adaptive_avg_backward_numpy(grad, input_shape):
    out = grad
    for d, n in enumerate(input_shape[2:]):
        m = _averaging_matrix(n, grad.shape[2 + d], grad.dtype)  # (o, n); backward: m^T
        out = np.moveaxis(np.tensordot(m.T, out, axes=([1], [2 + d])), 0, 2 + d)
    return out


def _adaptive_max_numpy(x, output_size):
    """Adaptive max with PyTorch's rule (first maximum wins, the last NaN wins a bin)."""
    N, C = x.shape[:2]
    spatial = x.shape[2:]
    out = np.empty((N, C) + tuple(output_size), dtype=x.dtype)
    indices = np.empty((N, C) + tuple(output_size), dtype=np.int64)
    bins = [_bins(n, o) for n, o in zip(spatial, output_size)]
    flat_index = np.arange(int(np.prod(spatial))).reshape(spatial)
    for pos in np.ndindex(*output_size):
        window = tuple(slice(b[0][p], b[1][p]) for b, p in zip(bins, pos))
        values = x[(Ellipsis,) + window].reshape(N, C, -1)
        where = flat_index[window].reshape(-1)
        nan = np.isnan(values)
        last_nan = values.shape[2] - 1 - np.argmax(nan[..., ::-1], axis=2)
        first_max = np.argmax(np.where(nan, -np.inf, values), axis=2)
        pick = np.where(nan.any(axis=2), last_nan, first_max)
        out[(Ellipsis,) + pos] = np.take_along_axis(values, pick[..., None], 2)[..., 0]
        indices[(Ellipsis,) + pos] = where[pick]
    return out, indices


# ----- front ends for convengine.nn.functional -------------------------------------------------
# Each takes PyTorch's arguments for an nd-dimensional pool, checks them (errors name `op`),
# accepts unbatched (C, *spatial) input as PyTorch does, and applies the Function.

def _input(input, nd, op, name="input"):
    """input as a float Tensor (N, C, *spatial) and whether a batch dim was added."""
    from ..creation import as_tensor

    x = as_tensor(input)
    if x.dtype not in (np.float32, np.float64):
        raise TypeError(f"{op}: argument '{name}' must be a float32 or float64 tensor, got "
                        f"dtype {x.dtype}")
    spatial = ", ".join("DHW"[3 - nd:])
    if x.ndim not in (nd + 1, nd + 2):
        raise ValueError(f"{op}: argument '{name}' must be {nd + 1}-D (C, {spatial}) or "
                         f"{nd + 2}-D (N, C, {spatial}), got shape {tuple(x.shape)}")
    if any(s == 0 for s in x.shape[-nd - 1:]):
        raise ValueError(f"{op}: argument '{name}' must have non-zero channel and spatial "
                         f"sizes (only the batch may be empty), got shape {tuple(x.shape)}")
    unbatched = x.ndim == nd + 1
    return (x.unsqueeze(0) if unbatched else x), unbatched


def _finish(out, indices, unbatched, return_indices):
    from ..tensor import Tensor

    if unbatched:
        out = out.squeeze(0)
        indices = indices[0] if indices is not None else None
    return (out, Tensor(indices)) if return_indices else out


def max_pool(input, nd, kernel_size, stride, padding, dilation, ceil_mode, return_indices, op):
    x, unbatched = _input(input, nd, op)
    kernel, stride, pad, dilation, _ = kernels.window_args(op, x.shape[2:], kernel_size, stride,
                                                           padding, dilation, ceil_mode)
    sink = [] if return_indices else None
    out = MaxPool.apply(x, kernel=kernel, stride=stride, padding=pad, dilation=dilation,
                        ceil_mode=bool(ceil_mode), indices_sink=sink)
    return _finish(out, sink[0] if sink else None, unbatched, return_indices)


def avg_pool(input, nd, kernel_size, stride, padding, ceil_mode, count_include_pad,
             divisor_override, op):
    x, unbatched = _input(input, nd, op)
    kernel, stride, pad, _, _ = kernels.window_args(op, x.shape[2:], kernel_size, stride,
                                                    padding, 1, ceil_mode)
    out = AvgPool.apply(x, kernel=kernel, stride=stride, padding=pad, ceil_mode=bool(ceil_mode),
                        count_include_pad=bool(count_include_pad),
                        divisor_override=kernels.divisor_arg(divisor_override, op))
    return _finish(out, None, unbatched, False)


def adaptive_avg_pool(input, nd, output_size, op):
    x, unbatched = _input(input, nd, op)
    size = kernels.adaptive_output_size(output_size, x.shape[2:], op)
    return _finish(AdaptiveAvgPool.apply(x, output_size=size), None, unbatched, False)


def adaptive_max_pool(input, nd, output_size, return_indices, op):
    x, unbatched = _input(input, nd, op)
    size = kernels.adaptive_output_size(output_size, x.shape[2:], op)
    sink = [] if return_indices else None
    out = AdaptiveMaxPool.apply(x, output_size=size, indices_sink=sink)
    return _finish(out, sink[0] if sink else None, unbatched, return_indices)


def unpool_output_size(in_spatial, kernel, stride, padding, output_size, op):
    """PyTorch's rule: (in - 1) * stride - 2 * padding + kernel by default; a given
    output_size (spatial, or the full (N, C, *spatial)) must lie strictly within one stride
    of that."""
    nd = len(in_spatial)
    default = tuple((n - 1) * s - 2 * p + k
                    for n, s, p, k in zip(in_spatial, stride, padding, kernel))
    if output_size is None:
        size = default
    else:
        size = tuple(output_size)
        if len(size) == nd + 2:
            size = size[2:]
        if len(size) != nd or not all(kernels._is_int(v) for v in size):
            raise ValueError(f"{op}: argument 'output_size' must have {nd} or {nd + 2} ints, "
                             f"got {tuple(output_size)!r}")
        for d in range(nd):
            low, high = default[d] - stride[d], default[d] + stride[d]
            if not low < size[d] < high:
                raise ValueError(f"{op}: argument 'output_size' {size} is invalid: dim {d} "
                                 f"must be between {low + 1} and {high - 1} for this input, "
                                 f"kernel_size, stride and padding")
    if any(v <= 0 for v in size):
        raise ValueError(f"{op}: the output size would be {size} (must be >= 1 in every dim)")
    return tuple(int(v) for v in size)


def max_unpool(input, indices, nd, kernel_size, stride, padding, output_size, op):
    from ..tensor import Tensor

    x, unbatched = _input(input, nd, op)
    idx = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: argument 'indices' must be an integer tensor, got dtype "
                        f"{idx.dtype}")
    idx = np.ascontiguousarray(idx, dtype=np.int64)
    if unbatched:
        idx = idx[None]
    if idx.shape != x.shape:
        raise ValueError(f"{op}: argument 'indices' must have the shape of 'input' "
                         f"{tuple(input.shape)}, got {tuple(np.shape(indices))}")
    kernel = kernels.int_tuple(kernel_size, nd, op, "kernel_size", 1)
    stride = kernel if stride is None else kernels.int_tuple(stride, nd, op, "stride", 1)
    pad = kernels.int_tuple(padding, nd, op, "padding", 0)
    size = unpool_output_size(x.shape[2:], kernel, stride, pad, output_size, op)
    full = int(np.prod(size))
    if idx.size and (idx.min() < 0 or idx.max() >= full):
        raise ValueError(f"{op}: argument 'indices' must be in [0, {full}) for output size "
                         f"{size}, got values in [{idx.min()}, {idx.max()}]")
    return _finish(MaxUnpool.apply(x, indices=idx, output_size=size), None, unbatched, False)
