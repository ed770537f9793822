"""The geometric and filtering kernels behind the transforms, on NumPy arrays.

Arrays are channel-first with the spatial axes last: (*leading, H, W) for 2D, (*leading, D, H,
W) for 3D; every leading "channel" (C, or N*C for a batch) is resampled the same way. The
per-pixel loops run in the compiled convengine._transforms (Cython, nogil); the matrices
here map output indices to input indices (voxel centres at integer indices).
"""

import math
import numbers

import numpy as np

try:
    from .. import _transforms
except ImportError as error:  # pragma: no cover - a broken build
    raise ImportError("convengine._transforms (the compiled augmentation kernels) is missing; "
                      "rebuild the package with `pip install -e .`") from error

__all__ = ["affine", "warp", "gaussian_blur", "rotation_matrix", "affine_matrix",
           "resize", "MODES"]

MODES = {"constant": 0, "nearest": 1, "reflect": 2}


def _mode(mode, op):
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {', '.join(MODES)}, got {mode!r}")
    return MODES[mode]


def _order(order, op):
    if order not in (0, 1):
        raise ValueError(f"{op}: order must be 0 (nearest) or 1 (linear), got {order!r}")
    return order


def _check_dims(array, dims, op):
    if dims not in (2, 3):
        raise ValueError(f"{op}: dims must be 2 or 3, got {dims!r}")
    if array.ndim < dims:
        raise ValueError(f"{op}: a {dims}-D transform needs at least {dims} dimensions, got "
                         f"shape {array.shape}")


def _as_planes(array, dims):
    """(*leading, *spatial) -> float32 contiguous (prod(leading), *spatial)."""
    spatial = array.shape[array.ndim - dims:]
    return np.ascontiguousarray(array.reshape((-1,) + spatial), dtype=np.float32)


def _restore(out, array, dims, order):
    """Back to the input's leading shape, and to its dtype (rounded for integer masks)."""
    out = out.reshape(array.shape[:array.ndim - dims] + out.shape[1:])
    if array.dtype.kind in "iub":
        out = np.rint(out) if order else out
        return out.astype(array.dtype)
    return out.astype(array.dtype, copy=False)


def affine(array, matrix, dims, output_shape=None, order=1, mode="constant", cval=0.0):
    """Resamples the spatial axes at matrix @ (out_index, 1): matrix (dims, dims + 1)."""
    op = "affine"
    _check_dims(array, dims, op)
    matrix = np.ascontiguousarray(matrix, dtype=np.float64)
    if matrix.shape != (dims, dims + 1):
        raise ValueError(f"{op}: matrix must have shape {(dims, dims + 1)}, got {matrix.shape}")
    spatial = array.shape[array.ndim - dims:]
    output_shape = tuple(spatial if output_shape is None else output_shape)
    if len(output_shape) != dims or any(int(s) <= 0 for s in output_shape):
        raise ValueError(f"{op}: output_shape must hold {dims} positive sizes, got "
                         f"{output_shape}")
    planes = _as_planes(array, dims)
    kernel = _transforms.affine_2d if dims == 2 else _transforms.affine_3d
    out = kernel(planes, matrix, *[int(s) for s in output_shape], order=_order(order, op),
                 mode=_mode(mode, op), cval=float(cval))
    return _restore(out, array, dims, order)


def warp(array, coords, order=1, mode="constant", cval=0.0):
    """Resamples at absolute input coordinates coords (dims, *out_spatial) (z, y, x order)."""
    op = "warp"
    coords = np.ascontiguousarray(coords, dtype=np.float64)
    dims = coords.shape[0]
    _check_dims(array, dims, op)
    if coords.ndim != dims + 1:
        raise ValueError(f"{op}: coords must have shape ({dims}, *spatial), got {coords.shape}")
    planes = _as_planes(array, dims)
    kernel = _transforms.warp_2d if dims == 2 else _transforms.warp_3d
    out = kernel(planes, coords, order=_order(order, op), mode=_mode(mode, op),
                 cval=float(cval))
    return _restore(out, array, dims, order)


def gaussian_blur(array, sigma, dims, mode="reflect", truncate=4.0):
    """Separable Gaussian filter over the spatial axes; sigma a number or one per axis."""
    op = "gaussian_blur"
    _check_dims(array, dims, op)
    sigmas = [sigma] * dims if isinstance(sigma, numbers.Real) else list(sigma)
    if len(sigmas) != dims or any(s < 0 for s in sigmas):
        raise ValueError(f"{op}: sigma must be non-negative, one value or {dims}, got {sigma}")
    out = np.asarray(array, dtype=np.float64)
    mode_id = _mode(mode, op)
    for k, s in enumerate(sigmas):
        if s == 0:
            continue
        axis = array.ndim - dims + k
        shape = out.shape
        # (outer, n, inner) view with the filtered axis in the middle
        view = np.ascontiguousarray(out).reshape(
            int(np.prod(shape[:axis])), shape[axis], int(np.prod(shape[axis + 1:])))
        out = _transforms.convolve_axis(view, _transforms.gaussian_kernel(float(s), truncate),
                                        mode_id).reshape(shape)
    return out.astype(array.dtype if array.dtype.kind == "f" else np.float32, copy=False)


def rotation_matrix(angles, dims):
    """Rotation in index space: 2D by angles (degrees, in the (y, x) plane); 3D by
    (about z, about y, about x) degrees, applied in that order."""
    if dims == 2:
        a = math.radians(float(angles if isinstance(angles, numbers.Real) else angles[0]))
        return np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    az, ay, ax = (math.radians(float(v)) for v in angles)

    def rot(i, j, a):
        r = np.eye(3)
        r[i, i] = r[j, j] = math.cos(a)
        r[i, j], r[j, i] = -math.sin(a), math.sin(a)
        return r

    # axes order (z, y, x): about z rotates the (y, x) plane, about y the (z, x), about x (z, y)
    return rot(0, 1, ax) @ rot(0, 2, ay) @ rot(1, 2, az)


def affine_matrix(in_shape, out_shape=None, linear=None, translate=None):
    """The (dims, dims + 1) output -> input matrix of the forward map
    out = linear @ (in - c_in) + c_out + translate, with c the centre of each grid."""
    dims = len(in_shape)
    out_shape = in_shape if out_shape is None else out_shape
    linear = np.eye(dims) if linear is None else np.asarray(linear, dtype=np.float64)
    translate = np.zeros(dims) if translate is None else np.asarray(translate, np.float64)
    c_in = (np.asarray(in_shape, np.float64) - 1) / 2
    c_out = (np.asarray(out_shape, np.float64) - 1) / 2
    inverse = np.linalg.inv(linear)
    return np.concatenate([inverse, (c_in - inverse @ (c_out + translate))[:, None]], axis=1)


def resize(array, size, dims, order=1, mode="nearest"):
    """Resizes the spatial axes to `size` (half-pixel centres, as align_corners=False)."""
    spatial = array.shape[array.ndim - dims:]
    size = tuple(int(s) for s in size)
    scale = np.asarray(spatial, np.float64) / np.asarray(size, np.float64)
    # in = (out + 0.5) * scale - 0.5
    matrix = np.concatenate([np.diag(scale), (0.5 * scale - 0.5)[:, None]], axis=1)
    return affine(array, matrix, dims, size, order=order, mode=mode)
