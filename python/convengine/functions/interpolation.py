"""interpolate: resizing (N, C, *spatial) by nearest, (bi/tri)linear or area sampling.

Every mode is separable: along each spatial axis the output is a fixed linear map of the input,
out = in @ W^T with W of shape (out_size, in_size) holding at most two non-zeros per row
(linear), one (nearest) or a box (area). Forward applies W axis by axis; backward applies W^T.
The source coordinates follow PyTorch exactly (align_corners, scale_factor vs size).
"""

import math
import numbers

import numpy as np

from ..autograd import Function
from ..creation import as_tensor

__all__ = ["Interpolate", "interpolate", "interpolation_matrix"]

_LINEAR_MODES = {"linear": 1, "bilinear": 2, "trilinear": 3}
_MODES = ("nearest", "nearest-exact", "area") + tuple(_LINEAR_MODES)


def _source_scale(in_size, out_size, scale_factor, align_corners):
    """The input-per-output step PyTorch uses to map coordinates."""
    if align_corners:
        return (in_size - 1) / (out_size - 1) if out_size > 1 else 0.0
    if scale_factor is not None and scale_factor > 0:
        return 1.0 / scale_factor
    return in_size / out_size


def interpolation_matrix(in_size, out_size, mode, align_corners=False, scale_factor=None,
                         dtype=np.float64):
    """W (out_size, in_size) with out = W @ in along one axis."""
    w = np.zeros((out_size, in_size), dtype=np.float64)
    dst = np.arange(out_size, dtype=np.float64)
    rows = np.arange(out_size)
    if mode in ("nearest", "nearest-exact"):
        scale = _source_scale(in_size, out_size, scale_factor, False)
        offset = 0.5 if mode == "nearest-exact" else 0.0
        src = np.minimum(np.floor((dst + offset) * np.float32(scale)).astype(np.int64),
                         in_size - 1)
        w[rows, src] = 1.0
    elif mode == "area":  # adaptive average pooling's windows
        start = (rows * in_size) // out_size
        end = -((-(rows + 1) * in_size) // out_size)
        for i in range(out_size):
            w[i, start[i]:end[i]] = 1.0 / (end[i] - start[i])
    else:
        scale = _source_scale(in_size, out_size, scale_factor, align_corners)
        src = scale * dst if align_corners else np.maximum(scale * (dst + 0.5) - 0.5, 0.0)
        i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
        i1 = np.minimum(i0 + 1, in_size - 1)
        lam1 = src - i0
        np.add.at(w, (rows, i0), 1.0 - lam1)
        np.add.at(w, (rows, i1), lam1)
    return w.astype(dtype)


def _apply_along(x, matrix, axis):
    # (..., in) @ (in, out) -> (..., out) along `axis`
    moved = np.moveaxis(x, axis, -1)
    return np.moveaxis(moved @ matrix.T, -1, axis)


class Interpolate(Function):
    """out = x with matrices[i] applied along spatial axis i (None: axis unchanged)."""

    def forward(self, x, matrices):
        self.matrices = matrices
        out = x
        for i, m in enumerate(matrices):
            if m is not None:
                out = _apply_along(out, m.astype(x.dtype, copy=False), 2 + i)
        return np.ascontiguousarray(out)

    def backward(self, grad):
        for i, m in enumerate(self.matrices):
            if m is not None:
                grad = _apply_along(grad, m.T.astype(grad.dtype, copy=False), 2 + i)
        return np.ascontiguousarray(grad)


def _per_axis(value, n, name):
    if value is None:
        return [None] * n
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"interpolate: {name} must have {n} elements for a {n}-D spatial "
                             f"input, got {tuple(value)}")
        return list(value)
    return [value] * n


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resizes (N, C, *spatial) to `size` or by `scale_factor`, as torch.nn.functional.

    mode: 'nearest', 'nearest-exact', 'linear' (3-D input), 'bilinear' (4-D), 'trilinear'
    (5-D) or 'area'. align_corners (linear modes only, default False) maps the corner pixels'
    centres onto each other.
    """
    input = as_tensor(input)
    if mode not in _MODES:
        raise ValueError(f"interpolate: mode must be one of {', '.join(_MODES)}, got {mode!r}")
    if antialias:
        raise ValueError("interpolate: antialias=True is not supported")
    if input.dtype.kind != "f":
        raise TypeError(f"interpolate: input must be floating point, got dtype {input.dtype}")
    n_spatial = input.ndim - 2
    if n_spatial < 1 or n_spatial > 3:
        raise ValueError(f"interpolate: input must be 3-D, 4-D or 5-D (N, C, *spatial), got "
                         f"shape {input.shape}")
    if mode in _LINEAR_MODES and _LINEAR_MODES[mode] != n_spatial:
        raise ValueError(f"interpolate: mode {mode!r} needs a {_LINEAR_MODES[mode] + 2}-D "
                         f"input, got shape {input.shape}")
    if align_corners is not None and mode not in _LINEAR_MODES:
        raise ValueError("interpolate: align_corners option can only be set with the "
                         "interpolating modes: linear | bilinear | trilinear")
    align_corners = bool(align_corners)
    if (size is None) == (scale_factor is None):
        raise ValueError("interpolate: exactly one of size and scale_factor must be given")
    in_sizes = input.shape[2:]
    if size is not None:
        sizes = _per_axis(size, n_spatial, "size")
        if not all(isinstance(s, numbers.Integral) and s > 0 for s in sizes):
            raise ValueError(f"interpolate: size must hold positive ints, got {size}")
        scales = [None] * n_spatial
    else:
        scales = _per_axis(scale_factor, n_spatial, "scale_factor")
        if not all(isinstance(s, numbers.Real) and s > 0 for s in scales):
            raise ValueError(f"interpolate: scale_factor must be positive, got {scale_factor}")
        sizes = [int(math.floor(n * s)) for n, s in zip(in_sizes, scales)]
        if any(s <= 0 for s in sizes):
            raise ValueError(f"interpolate: scale_factor {scale_factor} gives an empty output "
                             f"for input of shape {input.shape}")
        if recompute_scale_factor:
            scales = [None] * n_spatial
    matrices = []
    for n_in, n_out, s in zip(in_sizes, sizes, scales):
        if n_in == n_out and (mode != "area") and (s is None or s == 1.0):
            matrices.append(None)  # identity: PyTorch copies the axis unchanged too
        else:
            matrices.append(interpolation_matrix(n_in, int(n_out), mode, align_corners, s))
    return Interpolate.apply(input, matrices=matrices)
