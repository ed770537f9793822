# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
# cython: initializedcheck=False
"""convengine._transforms: the per-pixel loops of the data-augmentation transforms.

Every kernel resamples channel-first float32 arrays, (C, H, W) or (C, D, H, W), at input
coordinates computed per output voxel, in `nogil` loops over typed memoryviews (so a
DataLoader's prefetch thread runs them while the main thread trains).

Coordinates are in index space: voxel centres sit at integer indices, axis order (z,) y, x.
order: 0 = nearest (masks), 1 = (bi/tri)linear.
mode: 0 = constant (cval outside), 1 = nearest edge (clamp), 2 = reflect (mirror about the
edge voxel centres, "reflect" in scipy: d c b | a b c d | c b a).

Python callers go through convengine.data.functional, which checks shapes and dtypes; the
checks here only guard against crashes.
"""

import numpy as np

from libc.math cimport floor, exp

ctypedef float f32


cdef inline Py_ssize_t _map_index(Py_ssize_t i, Py_ssize_t n, int mode) noexcept nogil:
    """An index into [0, n), or -1 for "outside" in constant mode."""
    cdef Py_ssize_t period
    if 0 <= i < n:
        return i
    if mode == 0:
        return -1
    if mode == 1:
        return 0 if i < 0 else n - 1
    # reflect about the edge voxel centres: period 2n - 2
    if n == 1:
        return 0
    period = 2 * n - 2
    i = i % period
    if i < 0:
        i += period
    if i >= n:
        i = period - i
    return i


cdef inline f32 _sample2(const f32[:, ::1] img, double y, double x, int order, int mode,
                         f32 cval) noexcept nogil:
    cdef Py_ssize_t h = img.shape[0], w = img.shape[1]
    cdef Py_ssize_t y0, x0, yi, xi, a, b
    cdef double wy, wx, acc, weight
    if order == 0:
        yi = _map_index(<Py_ssize_t>floor(y + 0.5), h, mode)
        xi = _map_index(<Py_ssize_t>floor(x + 0.5), w, mode)
        if yi < 0 or xi < 0:
            return cval
        return img[yi, xi]
    y0 = <Py_ssize_t>floor(y)
    x0 = <Py_ssize_t>floor(x)
    wy = y - y0
    wx = x - x0
    acc = 0.0
    for a in range(2):
        yi = _map_index(y0 + a, h, mode)
        for b in range(2):
            weight = (wy if a else 1.0 - wy) * (wx if b else 1.0 - wx)
            if weight == 0.0:
                continue
            xi = _map_index(x0 + b, w, mode)
            if yi < 0 or xi < 0:
                acc += weight * cval
            else:
                acc += weight * img[yi, xi]
    return <f32>acc


cdef inline f32 _sample3(const f32[:, :, ::1] vol, double z, double y, double x, int order,
                         int mode, f32 cval) noexcept nogil:
    cdef Py_ssize_t d = vol.shape[0], h = vol.shape[1], w = vol.shape[2]
    cdef Py_ssize_t z0, y0, x0, zi, yi, xi, a, b, c
    cdef double wz, wy, wx, acc, weight
    if order == 0:
        zi = _map_index(<Py_ssize_t>floor(z + 0.5), d, mode)
        yi = _map_index(<Py_ssize_t>floor(y + 0.5), h, mode)
        xi = _map_index(<Py_ssize_t>floor(x + 0.5), w, mode)
        if zi < 0 or yi < 0 or xi < 0:
            return cval
        return vol[zi, yi, xi]
    z0 = <Py_ssize_t>floor(z)
    y0 = <Py_ssize_t>floor(y)
    x0 = <Py_ssize_t>floor(x)
    wz = z - z0
    wy = y - y0
    wx = x - x0
    acc = 0.0
    for a in range(2):
        zi = _map_index(z0 + a, d, mode)
        for b in range(2):
            yi = _map_index(y0 + b, h, mode)
            for c in range(2):
                weight = ((wz if a else 1.0 - wz) * (wy if b else 1.0 - wy)
                          * (wx if c else 1.0 - wx))
                if weight == 0.0:
                    continue
                xi = _map_index(x0 + c, w, mode)
                if zi < 0 or yi < 0 or xi < 0:
                    acc += weight * cval
                else:
                    acc += weight * vol[zi, yi, xi]
    return <f32>acc


def _check(bint ok, str message):
    if not ok:
        raise ValueError(message)


def affine_2d(const f32[:, :, ::1] src, const double[:, ::1] matrix, Py_ssize_t out_h,
              Py_ssize_t out_w, int order=1, int mode=0, double cval=0.0):
    """(C, out_h, out_w): out[c, i, j] = src[c] sampled at matrix @ (i, j, 1).

    matrix: (2, 3), mapping output (y, x) to input (y, x).
    """
    _check(matrix.shape[0] == 2 and matrix.shape[1] == 3, "affine_2d: matrix must be (2, 3)")
    _check(out_h > 0 and out_w > 0, "affine_2d: output size must be positive")
    _check(src.shape[1] > 0 and src.shape[2] > 0, "affine_2d: empty input")
    cdef Py_ssize_t channels = src.shape[0], c, i, j
    out = np.empty((channels, out_h, out_w), dtype=np.float32)
    cdef f32[:, :, ::1] dst = out
    cdef double y, x
    cdef f32 fill = <f32>cval
    cdef const f32[:, ::1] plane
    with nogil:
        for c in range(channels):
            plane = src[c]
            for i in range(out_h):
                for j in range(out_w):
                    y = matrix[0, 0] * i + matrix[0, 1] * j + matrix[0, 2]
                    x = matrix[1, 0] * i + matrix[1, 1] * j + matrix[1, 2]
                    dst[c, i, j] = _sample2(plane, y, x, order, mode, fill)
    return out


def affine_3d(const f32[:, :, :, ::1] src, const double[:, ::1] matrix, Py_ssize_t out_d,
              Py_ssize_t out_h, Py_ssize_t out_w, int order=1, int mode=0, double cval=0.0):
    """(C, out_d, out_h, out_w): out[c, k, i, j] = src[c] at matrix @ (k, i, j, 1).

    matrix: (3, 4), mapping output (z, y, x) to input (z, y, x).
    """
    _check(matrix.shape[0] == 3 and matrix.shape[1] == 4, "affine_3d: matrix must be (3, 4)")
    _check(out_d > 0 and out_h > 0 and out_w > 0, "affine_3d: output size must be positive")
    _check(src.shape[1] > 0 and src.shape[2] > 0 and src.shape[3] > 0, "affine_3d: empty input")
    cdef Py_ssize_t channels = src.shape[0], c, k, i, j
    out = np.empty((channels, out_d, out_h, out_w), dtype=np.float32)
    cdef f32[:, :, :, ::1] dst = out
    cdef double z, y, x
    cdef f32 fill = <f32>cval
    cdef const f32[:, :, ::1] vol
    with nogil:
        for c in range(channels):
            vol = src[c]
            for k in range(out_d):
                for i in range(out_h):
                    for j in range(out_w):
                        z = matrix[0, 0] * k + matrix[0, 1] * i + matrix[0, 2] * j + matrix[0, 3]
                        y = matrix[1, 0] * k + matrix[1, 1] * i + matrix[1, 2] * j + matrix[1, 3]
                        x = matrix[2, 0] * k + matrix[2, 1] * i + matrix[2, 2] * j + matrix[2, 3]
                        dst[c, k, i, j] = _sample3(vol, z, y, x, order, mode, fill)
    return out


def warp_2d(const f32[:, :, ::1] src, const double[:, :, ::1] coords, int order=1, int mode=0,
            double cval=0.0):
    """(C, H', W'): out[c, i, j] = src[c] at (coords[0, i, j], coords[1, i, j])."""
    _check(coords.shape[0] == 2, "warp_2d: coords must be (2, H', W')")
    _check(src.shape[1] > 0 and src.shape[2] > 0, "warp_2d: empty input")
    cdef Py_ssize_t channels = src.shape[0], out_h = coords.shape[1], out_w = coords.shape[2]
    cdef Py_ssize_t c, i, j
    out = np.empty((channels, out_h, out_w), dtype=np.float32)
    cdef f32[:, :, ::1] dst = out
    cdef f32 fill = <f32>cval
    cdef const f32[:, ::1] plane
    with nogil:
        for c in range(channels):
            plane = src[c]
            for i in range(out_h):
                for j in range(out_w):
                    dst[c, i, j] = _sample2(plane, coords[0, i, j], coords[1, i, j], order,
                                            mode, fill)
    return out


def warp_3d(const f32[:, :, :, ::1] src, const double[:, :, :, ::1] coords, int order=1,
            int mode=0, double cval=0.0):
    """(C, D', H', W'): out[c, k, i, j] = src[c] at coords[:, k, i, j] (z, y, x)."""
    _check(coords.shape[0] == 3, "warp_3d: coords must be (3, D', H', W')")
    _check(src.shape[1] > 0 and src.shape[2] > 0 and src.shape[3] > 0, "warp_3d: empty input")
    cdef Py_ssize_t channels = src.shape[0]
    cdef Py_ssize_t out_d = coords.shape[1], out_h = coords.shape[2], out_w = coords.shape[3]
    cdef Py_ssize_t c, k, i, j
    out = np.empty((channels, out_d, out_h, out_w), dtype=np.float32)
    cdef f32[:, :, :, ::1] dst = out
    cdef f32 fill = <f32>cval
    cdef const f32[:, :, ::1] vol
    with nogil:
        for c in range(channels):
            vol = src[c]
            for k in range(out_d):
                for i in range(out_h):
                    for j in range(out_w):
                        dst[c, k, i, j] = _sample3(vol, coords[0, k, i, j],
                                                   coords[1, k, i, j], coords[2, k, i, j],
                                                   order, mode, fill)
    return out


def convolve_axis(const double[:, :, ::1] src, const double[::1] kernel, int mode=2):
    """1-D correlation along the middle axis of (outer, n, inner) with an odd-length kernel
    centred on each element; boundary by `mode` (constant mode pads with zeros).

    Any axis of an array becomes the middle one by reshaping (prod(before), n, prod(after)).
    """
    _check(kernel.shape[0] % 2 == 1, "convolve_axis: kernel length must be odd")
    cdef Py_ssize_t outer = src.shape[0], n = src.shape[1], inner = src.shape[2]
    cdef Py_ssize_t radius = kernel.shape[0] // 2, o, i, k, t, idx
    out = np.empty((outer, n, inner), dtype=np.float64)
    cdef double[:, :, ::1] dst = out
    cdef double acc
    with nogil:
        for o in range(outer):
            for i in range(n):
                for t in range(inner):
                    acc = 0.0
                    for k in range(-radius, radius + 1):
                        idx = _map_index(i + k, n, mode)
                        if idx >= 0:
                            acc += kernel[k + radius] * src[o, idx, t]
                    dst[o, i, t] = acc
    return out


def gaussian_kernel(double sigma, double truncate=4.0):
    """Normalised 1-D Gaussian weights, radius = int(truncate * sigma + 0.5) (as scipy)."""
    _check(sigma > 0, "gaussian_kernel: sigma must be positive")
    cdef Py_ssize_t radius = <Py_ssize_t>(truncate * sigma + 0.5), i
    out = np.empty(2 * radius + 1, dtype=np.float64)
    cdef double[::1] w = out
    cdef double total = 0.0
    for i in range(-radius, radius + 1):
        w[i + radius] = exp(-0.5 * i * i / (sigma * sigma))
        total += w[i + radius]
    for i in range(2 * radius + 1):
        w[i] /= total
    return out
