"""NumPy reference backend: the slow, obvious ground truth for every fast kernel.

Everything here is plain NumPy, written for clarity over speed. Each op loops in
Python only over kernel offsets (``np.ndindex(*kernel)``); the work for one offset
is a strided view of the (padded) input and one batched ``matmul`` over groups. No
op loops over output pixels in Python.

Conventions
-----------
- Layout is channels-first: ``x`` is ``(N, C, *spatial)`` with 1, 2 or 3 spatial
  dims (``(N, C, L)``, ``(N, C, H, W)``, ``(N, C, D, H, W)``). The number of spatial
  dims is always ``x.ndim - 2``.
- Convolution weights are ``(OC, C/groups, *kernel)``; transposed-convolution
  weights are ``(C_in, C_out/groups, *kernel)``, both exactly as in PyTorch.
  Convolution is cross-correlation (the kernel is not flipped), as in PyTorch.
- ``stride``, ``dilation``, ``kernel_size`` and ``output_padding`` are an int
  (same for every spatial dim) or a tuple with one int per spatial dim.
- Convolution ``padding`` is zero padding and may be an int, a tuple with one int
  per dim (symmetric), a tuple with one ``(before, after)`` pair per dim
  (asymmetric, e.g. ``((1, 2), (0, 1))``; ints and pairs may be mixed), or the
  strings ``'valid'`` / ``'same'`` (``'same'`` needs stride 1 and, like PyTorch,
  puts the odd extra element of padding after). Pooling padding is symmetric
  (int or one int per dim), as in PyTorch.
- dtype: float32 stays float32, float64 stays float64, mixed inputs promote
  (``np.result_type(..., np.float32)``; integers become float64). Sums are
  accumulated in that dtype by NumPy/BLAS.
- Backward functions get the forward's parameters and return only the gradient
  they are named for; shapes of the forward are re-derived and checked.
- Bad arguments raise ``ValueError`` (wrong shape, out-of-range value, output
  size <= 0) or ``TypeError`` (wrong type, e.g. a float stride). Every message
  starts with the op name, names the argument and shows expected vs actual.

Semantics follow PyTorch (``torch.nn.functional``): output sizes, ``ceil_mode``
(the last window must start inside the input or the left padding), max-pool
indices (flat index into each (N, C) plane of the input, first maximum in
row-major window order wins, NaN propagates), and the avg-pool divisor.
"""

import numpy as np

__all__ = [
    "output_size",
    "conv_output_shape",
    "conv_transpose_output_shape",
    "pool_output_shape",
    "conv_forward",
    "conv_backward_input",
    "conv_backward_weight",
    "conv_backward_bias",
    "conv_transpose_forward",
    "conv_transpose_backward_input",
    "conv_transpose_backward_weight",
    "max_pool_forward",
    "max_pool_backward",
    "avg_pool_forward",
    "avg_pool_backward",
]


# --------------------------------------------------------------------------- #
# argument checking and normalisation
# --------------------------------------------------------------------------- #

def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _fmt(shape):
    """Format a shape like ``(2, 3, 5)`` (also for 1-tuples)."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"


def _spatial_ndim(shape, op, name):
    """Number of spatial dims of an ``(N, C, *spatial)`` shape; must be 1, 2 or 3."""
    if len(shape) not in (3, 4, 5):
        raise ValueError(
            f"{op}: {name} must be 3-D, 4-D or 5-D (N, C, *spatial) with 1-3 spatial "
            f"dims, got shape {_fmt(shape)} with ndim {len(shape)}")
    return len(shape) - 2


def _as_shape(shape, op, name):
    """A shape argument (tuple of non-negative ints) as a tuple of Python ints."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a tuple of ints, got {shape!r}") from None
    if not all(_is_int(s) for s in dims):
        raise TypeError(f"{op}: {name} must be a tuple of ints, got {shape!r}")
    if any(s < 0 for s in dims):
        raise ValueError(f"{op}: {name} must not have negative sizes, got {_fmt(dims)}")
    return tuple(int(s) for s in dims)


def _as_tuple(value, nd, op, name, minimum):
    """An int or a tuple of ``nd`` ints, each >= ``minimum``, as a tuple of ``nd`` ints."""
    if _is_int(value):
        values = (int(value),) * nd
    elif isinstance(value, (tuple, list)):
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{op}: {name} must be an int or a tuple of {nd} ints, "
                            f"got {value!r}")
        if len(value) != nd:
            raise ValueError(f"{op}: {name} must be an int or a tuple of {nd} ints "
                             f"(one per spatial dim), got {len(value)} values {tuple(value)}")
        values = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {nd} ints, "
                        f"got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{op}: {name} must be >= {minimum} in every dim, got {values}")
    return values


def _as_padding(padding, nd, op, kernel=None, stride=None, dilation=None, name="padding"):
    """Padding as a tuple of ``nd`` ``(before, after)`` pairs of non-negative ints.

    Accepts an int, a tuple of ints (symmetric), a tuple of pairs (asymmetric), and,
    when ``kernel`` is given, the strings 'valid' and 'same'.
    """
    if isinstance(padding, str):
        if kernel is None:
            raise TypeError(f"{op}: {name} must be an int or a tuple of ints, got {padding!r}")
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            if any(s != 1 for s in stride):
                raise ValueError(f"{op}: {name}='same' needs stride 1 in every dim, "
                                 f"got stride {stride}")
            # total = d*(k-1); the odd element goes after, as in PyTorch
            total = [d * (k - 1) for k, d in zip(kernel, dilation)]
            return tuple((t // 2, t - t // 2) for t in total)
        raise ValueError(f"{op}: {name} string must be 'valid' or 'same', got {padding!r}")
    if _is_int(padding):
        pads = ((int(padding), int(padding)),) * nd
    elif isinstance(padding, (tuple, list)):
        if len(padding) != nd:
            raise ValueError(f"{op}: {name} must be an int, a tuple of {nd} ints or a tuple "
                             f"of {nd} (before, after) pairs, got {len(padding)} values "
                             f"{tuple(padding)}")
        pads = []
        for p in padding:
            if _is_int(p):
                pads.append((int(p), int(p)))
            elif (isinstance(p, (tuple, list)) and len(p) == 2
                  and all(_is_int(q) for q in p)):
                pads.append((int(p[0]), int(p[1])))
            else:
                raise TypeError(f"{op}: each entry of {name} must be an int or a "
                                f"(before, after) pair of ints, got {p!r}")
        pads = tuple(pads)
    else:
        raise TypeError(f"{op}: {name} must be an int, a tuple of ints or a tuple of "
                        f"(before, after) pairs, got {padding!r}")
    if any(q < 0 for p in pads for q in p):
        raise ValueError(f"{op}: {name} must be non-negative, got {pads}")
    return pads


def _as_float_array(a, *others):
    """``a`` as an ndarray in the common float dtype of ``a`` and ``others``."""
    arrays = [np.asarray(a)] + [np.asarray(o) for o in others if o is not None]
    dtype = np.result_type(*arrays, np.float32)
    return arrays[0].astype(dtype, copy=False), dtype


def _check_same_shape(actual, expected, op, name):
    if tuple(actual) != tuple(expected):
        raise ValueError(f"{op}: {name} must have shape {_fmt(expected)}, "
                         f"got {_fmt(actual)}")


def _window(offset, stride, dilation, out_spatial):
    """Slices over the padded spatial dims picking, for kernel offset ``offset``,
    the input element under that tap for every output position:
    ``padded[o*s + k*d]`` for ``o in range(out)``."""
    return tuple(slice(k * d, k * d + s * (o - 1) + 1, s)
                 for k, s, d, o in zip(offset, stride, dilation, out_spatial))


# --------------------------------------------------------------------------- #
# output sizes
# --------------------------------------------------------------------------- #

def output_size(input_size, kernel_size, stride=1, padding=0, dilation=1,
                ceil_mode=False, op="output_size"):
    """Output spatial size of a convolution or pooling window sweep, per dim.

    ``out = floor((in + before + after - d*(k-1) - 1) / s) + 1``; with
    ``ceil_mode`` the division rounds up, and (PyTorch's rule) the last window is
    dropped if it would start at or after ``in + before``, i.e. past the input
    and the left padding. Raises ValueError if any size is <= 0.
    """
    spatial = (_as_shape((input_size,), op, "input_size") if _is_int(input_size)
               else _as_shape(input_size, op, "input_size"))
    nd = len(spatial)
    if nd == 0:
        raise ValueError(f"{op}: input_size must have at least one spatial dim, got ()")
    kernel = _as_tuple(kernel_size, nd, op, "kernel_size", 1)
    stride = _as_tuple(stride, nd, op, "stride", 1)
    dilation = _as_tuple(dilation, nd, op, "dilation", 1)
    pads = _as_padding(padding, nd, op)
    out = []
    for n, k, s, (lo, hi), d in zip(spatial, kernel, stride, pads, dilation):
        span = n + lo + hi - d * (k - 1) - 1
        if ceil_mode:
            o = -(-span // s) + 1                      # ceil(span / s) + 1
            if (o - 1) * s >= n + lo:
                o -= 1
        else:
            o = span // s + 1
        out.append(o)
    out = tuple(out)
    if any(o <= 0 for o in out):
        raise ValueError(
            f"{op}: output size would be {out} (must be >= 1 in every dim): input "
            f"spatial size {_fmt(spatial)} with padding {pads} is too small for kernel "
            f"{kernel} with dilation {dilation} (effective kernel "
            f"{tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))}) and stride {stride}")
    return out


def _conv_geometry(op, input_shape, weight_shape, stride, padding, dilation, groups,
                   input_name="x", weight_name="w"):
    """Check a convolution's arguments; return (stride, pads, dilation, out_shape)."""
    input_shape = _as_shape(input_shape, op, input_name)
    weight_shape = _as_shape(weight_shape, op, weight_name)
    nd = _spatial_ndim(input_shape, op, input_name)
    if len(weight_shape) != nd + 2:
        raise ValueError(f"{op}: {weight_name} must be {nd + 2}-D (OC, C/groups, *kernel) "
                         f"to match {input_name} of shape {_fmt(input_shape)}, got shape "
                         f"{_fmt(weight_shape)}")
    if not _is_int(groups):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    N, C = input_shape[:2]
    OC, Cg = weight_shape[:2]
    kernel = weight_shape[2:]
    if C % groups != 0:
        raise ValueError(f"{op}: groups={groups} must divide the input channels, "
                         f"but {input_name} has C={C} (shape {_fmt(input_shape)})")
    if OC % groups != 0:
        raise ValueError(f"{op}: groups={groups} must divide the output channels, "
                         f"but {weight_name} has OC={OC} (shape {_fmt(weight_shape)})")
    if Cg != C // groups:
        raise ValueError(
            f"{op}: channel mismatch: {weight_name} must have shape "
            f"({OC}, {C // groups}, *kernel) = (OC, C/groups, *kernel) for {input_name} "
            f"of shape {_fmt(input_shape)} and groups={groups}, got {_fmt(weight_shape)}")
    if any(k < 1 for k in kernel):
        raise ValueError(f"{op}: kernel size must be >= 1 in every dim, "
                         f"got {weight_name} shape {_fmt(weight_shape)}")
    stride = _as_tuple(stride, nd, op, "stride", 1)
    dilation = _as_tuple(dilation, nd, op, "dilation", 1)
    pads = _as_padding(padding, nd, op, kernel=kernel, stride=stride, dilation=dilation)
    out = output_size(input_shape[2:], kernel, stride, pads, dilation, op=op)
    return stride, pads, dilation, (N, OC) + out


def conv_output_shape(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                      op="conv_forward"):
    """Full output shape ``(N, OC, *out)`` of ``conv_forward``; checks every argument."""
    return _conv_geometry(op, input_shape, weight_shape, stride, padding, dilation, groups)[3]


def _conv_transpose_geometry(op, input_shape, weight_shape, stride, padding, output_padding,
                             dilation, groups, input_name="x", weight_name="w"):
    """Check a transposed convolution's arguments.

    Returns (stride, pads, dilation, out_shape) where out_shape is
    ``(N, C_out, *out)`` with ``out = (in-1)*s - before - after + d*(k-1) + output_padding + 1``.
    """
    input_shape = _as_shape(input_shape, op, input_name)
    weight_shape = _as_shape(weight_shape, op, weight_name)
    nd = _spatial_ndim(input_shape, op, input_name)
    if len(weight_shape) != nd + 2:
        raise ValueError(f"{op}: {weight_name} must be {nd + 2}-D (C_in, C_out/groups, "
                         f"*kernel) to match {input_name} of shape {_fmt(input_shape)}, "
                         f"got shape {_fmt(weight_shape)}")
    if not _is_int(groups):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    N, C_in = input_shape[:2]
    kernel = weight_shape[2:]
    if C_in % groups != 0:
        raise ValueError(f"{op}: groups={groups} must divide the input channels, "
                         f"but {input_name} has C_in={C_in} (shape {_fmt(input_shape)})")
    if weight_shape[0] != C_in:
        raise ValueError(
            f"{op}: channel mismatch: {weight_name} must have shape ({C_in}, C_out/groups, "
            f"*kernel) = (C_in, C_out/groups, *kernel) for {input_name} of shape "
            f"{_fmt(input_shape)}, got {_fmt(weight_shape)}")
    if any(k < 1 for k in kernel):
        raise ValueError(f"{op}: kernel size must be >= 1 in every dim, "
                         f"got {weight_name} shape {_fmt(weight_shape)}")
    stride = _as_tuple(stride, nd, op, "stride", 1)
    dilation = _as_tuple(dilation, nd, op, "dilation", 1)
    pads = _as_padding(padding, nd, op)
    out_pad = _as_tuple(output_padding, nd, op, "output_padding", 0)
    for op_, s, d in zip(out_pad, stride, dilation):
        if op_ >= max(s, d):
            raise ValueError(f"{op}: output_padding must be smaller than either stride or "
                             f"dilation in every dim, got output_padding={out_pad}, "
                             f"stride={stride}, dilation={dilation}")
    out = tuple((n - 1) * s - lo - hi + d * (k - 1) + op_ + 1
                for n, s, (lo, hi), d, k, op_
                in zip(input_shape[2:], stride, pads, dilation, kernel, out_pad))
    if any(o <= 0 for o in out):
        raise ValueError(f"{op}: output size would be {out} (must be >= 1 in every dim) for "
                         f"{input_name} spatial size {_fmt(input_shape[2:])}, kernel "
                         f"{kernel}, stride {stride}, padding {pads}, dilation {dilation}, "
                         f"output_padding {out_pad}")
    return stride, pads, dilation, (N, weight_shape[1] * groups) + out


def conv_transpose_output_shape(input_shape, weight_shape, stride=1, padding=0,
                                output_padding=0, dilation=1, groups=1,
                                op="conv_transpose_forward"):
    """Full output shape ``(N, C_out, *out)`` of ``conv_transpose_forward``; checks arguments."""
    return _conv_transpose_geometry(op, input_shape, weight_shape, stride, padding,
                                    output_padding, dilation, groups)[3]


def _pool_geometry(op, input_shape, kernel_size, stride, padding, dilation, ceil_mode,
                   input_name="x"):
    """Check pooling arguments; return (kernel, stride, padding, dilation, out_shape)."""
    input_shape = _as_shape(input_shape, op, input_name)
    nd = _spatial_ndim(input_shape, op, input_name)
    kernel = _as_tuple(kernel_size, nd, op, "kernel_size", 1)
    stride = kernel if stride is None else _as_tuple(stride, nd, op, "stride", 1)
    pad = _as_tuple(padding, nd, op, "padding", 0)
    dilation = _as_tuple(dilation, nd, op, "dilation", 1)
    for p, k in zip(pad, kernel):
        if p > k // 2:
            raise ValueError(f"{op}: padding must be at most half of kernel_size "
                             f"(padding <= kernel_size // 2), got padding={pad}, "
                             f"kernel_size={kernel}")
    out = output_size(input_shape[2:], kernel, stride, pad, dilation, bool(ceil_mode), op=op)
    return kernel, stride, pad, dilation, input_shape[:2] + out


def pool_output_shape(input_shape, kernel_size, stride=None, padding=0, dilation=1,
                      ceil_mode=False, op="pool"):
    """Full output shape ``(N, C, *out)`` of max/avg pooling; checks arguments."""
    return _pool_geometry(op, input_shape, kernel_size, stride, padding, dilation,
                          ceil_mode)[4]


# --------------------------------------------------------------------------- #
# convolution: the three passes (used as written by the transposed convolution too)
# --------------------------------------------------------------------------- #
# Shapes: G = groups, Cg = C/G, OCg = OC/G, P = prod(out spatial).
# x is viewed as (N, G, Cg, *padded), w as (G, OCg, Cg, *kernel), y as (N, G, OCg, P).
# The "_impl" functions take the output spatial size from the array they are given
# (not from the formula), so the transposed convolution can reuse them when
# output_padding leaves rows that no output position reaches.

def _conv_forward_impl(x, w, stride, pads, dilation, groups, out_spatial, dtype):
    N, C = x.shape[:2]
    OC, Cg = w.shape[:2]
    G, OCg = groups, OC // groups
    P = int(np.prod(out_spatial))
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pads))          # (N, C, *padded), zeros
    xg = xp.reshape((N, G, Cg) + xp.shape[2:])              # (N, G, Cg, *padded)
    wg = w.reshape((G, OCg, Cg) + w.shape[2:])              # (G, OCg, Cg, *kernel)
    y = np.zeros((N, G, OCg, P), dtype=dtype)
    for off in np.ndindex(*w.shape[2:]):
        xs = xg[(Ellipsis,) + _window(off, stride, dilation, out_spatial)]  # (N, G, Cg, *out)
        # (N, G, OCg, P) += (G, OCg, Cg) @ (N, G, Cg, P)
        y += wg[(Ellipsis,) + off] @ xs.reshape(N, G, Cg, P)
    return y.reshape((N, OC) + tuple(out_spatial))


def _conv_backward_input_impl(grad_out, w, input_shape, stride, pads, dilation, groups, dtype):
    N, C = input_shape[:2]
    spatial = input_shape[2:]
    OC, Cg = w.shape[:2]
    G, OCg = groups, OC // groups
    out_spatial = grad_out.shape[2:]
    P = int(np.prod(out_spatial))
    padded = tuple(n + lo + hi for n, (lo, hi) in zip(spatial, pads))
    gxp = np.zeros((N, G, Cg) + padded, dtype=dtype)        # grad of the padded input
    go = grad_out.reshape(N, G, OCg, P)                     # (N, G, OCg, P)
    wt = w.reshape((G, OCg, Cg) + w.shape[2:]).swapaxes(1, 2)  # (G, Cg, OCg, *kernel)
    for off in np.ndindex(*w.shape[2:]):
        # (N, G, Cg, P) = (G, Cg, OCg) @ (N, G, OCg, P), scattered back under this tap
        contrib = wt[(Ellipsis,) + off] @ go
        gxp[(Ellipsis,) + _window(off, stride, dilation, out_spatial)] += \
            contrib.reshape((N, G, Cg) + tuple(out_spatial))
    crop = tuple(slice(lo, lo + n) for n, (lo, _) in zip(spatial, pads))
    return gxp[(Ellipsis,) + crop].reshape((N, C) + tuple(spatial))  # drop the padding


def _conv_backward_weight_impl(grad_out, x, weight_shape, stride, pads, dilation, groups,
                               dtype):
    N, C = x.shape[:2]
    OC, Cg = weight_shape[:2]
    kernel = tuple(weight_shape[2:])
    G, OCg = groups, OC // groups
    out_spatial = grad_out.shape[2:]
    P = int(np.prod(out_spatial))
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(pads))
    xg = xp.reshape((N, G, Cg) + xp.shape[2:])              # (N, G, Cg, *padded)
    go = grad_out.reshape(N, G, OCg, P)                     # (N, G, OCg, P)
    gw = np.zeros((G, OCg, Cg) + kernel, dtype=dtype)
    for off in np.ndindex(*kernel):
        xs = xg[(Ellipsis,) + _window(off, stride, dilation, out_spatial)].reshape(N, G, Cg, P)
        # (G, OCg, Cg) = sum over N of (N, G, OCg, P) @ (N, G, P, Cg)
        gw[(Ellipsis,) + off] = (go @ xs.swapaxes(-1, -2)).sum(axis=0)
    return gw.reshape(tuple(weight_shape))


def conv_forward(x, w, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """N-d convolution (cross-correlation), PyTorch ``conv{1,2,3}d`` semantics.

    x: (N, C, *in), w: (OC, C/groups, *kernel), bias: (OC,) or None -> (N, OC, *out).
    # (N, OC, *out)[n, o, p] = sum over (C/g, *kernel) of w[o, c, k] * xpad[n, g*C/g + c, p*s + k*d]
    """
    op = "conv_forward"
    x, dtype = _as_float_array(x, w, bias)
    w = np.asarray(w).astype(dtype, copy=False)
    stride, pads, dilation, out_shape = _conv_geometry(
        op, x.shape, w.shape, stride, padding, dilation, groups)
    y = _conv_forward_impl(x, w, stride, pads, dilation, groups, out_shape[2:], dtype)
    if bias is not None:
        bias = np.asarray(bias).astype(dtype, copy=False)
        _check_same_shape(bias.shape, (w.shape[0],), op, "bias")
        y += bias.reshape((1, -1) + (1,) * (x.ndim - 2))    # (1, OC, 1, ...) broadcast
    return y


def conv_backward_input(grad_out, w, input_shape, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv_forward`` with respect to x.

    grad_out: (N, OC, *out), w: (OC, C/groups, *kernel) -> grad_x: (N, C, *in).
    # grad_xpad[n, c, p*s + k*d] += sum over OC/g of w[o, c, k] * grad_out[n, o, p]
    # then crop the padding off grad_xpad.
    Input rows that no window reaches (the floor in the output size) get zero.
    """
    op = "conv_backward_input"
    grad_out, dtype = _as_float_array(grad_out, w)
    w = np.asarray(w).astype(dtype, copy=False)
    stride, pads, dilation, out_shape = _conv_geometry(
        op, input_shape, w.shape, stride, padding, dilation, groups, input_name="input_shape")
    _check_same_shape(grad_out.shape, out_shape, op, "grad_out")
    return _conv_backward_input_impl(grad_out, w, tuple(input_shape), stride, pads, dilation,
                                     groups, dtype)


def conv_backward_weight(grad_out, x, weight_shape, stride=1, padding=0, dilation=1, groups=1):
    """Gradient of ``conv_forward`` with respect to w.

    grad_out: (N, OC, *out), x: (N, C, *in) -> grad_w: weight_shape = (OC, C/groups, *kernel).
    # grad_w[o, c, k] = sum over (N, *out) of grad_out[n, o, p] * xpad[n, g*C/g + c, p*s + k*d]
    """
    op = "conv_backward_weight"
    grad_out, dtype = _as_float_array(grad_out, x)
    x = np.asarray(x).astype(dtype, copy=False)
    stride, pads, dilation, out_shape = _conv_geometry(
        op, x.shape, weight_shape, stride, padding, dilation, groups,
        weight_name="weight_shape")
    _check_same_shape(grad_out.shape, out_shape, op, "grad_out")
    return _conv_backward_weight_impl(grad_out, x, tuple(weight_shape), stride, pads,
                                      dilation, groups, dtype)


def conv_backward_bias(grad_out):
    """Gradient of the bias (conv or transposed conv).

    grad_out: (N, OC, *out) -> grad_b: (OC,) = sum of grad_out over every axis but 1.
    """
    grad_out, _ = _as_float_array(grad_out)
    if grad_out.ndim < 2:
        raise ValueError(f"conv_backward_bias: grad_out must be at least 2-D (N, OC, ...), "
                         f"got shape {_fmt(grad_out.shape)}")
    return grad_out.sum(axis=(0,) + tuple(range(2, grad_out.ndim)))


# --------------------------------------------------------------------------- #
# transposed convolution: the conv passes with roles swapped
# --------------------------------------------------------------------------- #
# A transposed convolution with weight w (C_in, C_out/g, *k) is the adjoint of the
# convolution with the same w read as (OC=C_in, C/g=C_out/g, *k) that maps
# (N, C_out, *out) -> (N, C_in, *in). Hence:
#   conv_transpose_forward          == conv_backward_input  (x plays grad_out)
#   conv_transpose_backward_input   == conv_forward         (grad_out plays x)
#   conv_transpose_backward_weight  == conv_backward_weight (grad_out plays x, x plays grad_out)
# output_padding only adds rows after the last one any tap reaches; they get the bias.

def conv_transpose_forward(x, w, bias=None, stride=1, padding=0, output_padding=0,
                           dilation=1, groups=1):
    """N-d transposed convolution, PyTorch ``conv_transpose{1,2,3}d`` semantics.

    x: (N, C_in, *in), w: (C_in, C_out/groups, *kernel), bias: (C_out,) or None
    -> (N, C_out, *out), out = (in-1)*s - 2*p + d*(k-1) + output_padding + 1.
    Computed as conv_backward_input(x, w, output shape): the same scatter.
    """
    op = "conv_transpose_forward"
    x, dtype = _as_float_array(x, w, bias)
    w = np.asarray(w).astype(dtype, copy=False)
    stride, pads, dilation, out_shape = _conv_transpose_geometry(
        op, x.shape, w.shape, stride, padding, output_padding, dilation, groups)
    # (N, C_out, *out): x is the "grad_out" of the conv (N, C_out, *out) -> (N, C_in, *in)
    y = _conv_backward_input_impl(x, w, out_shape, stride, pads, dilation, groups, dtype)
    if bias is not None:
        bias = np.asarray(bias).astype(dtype, copy=False)
        _check_same_shape(bias.shape, (out_shape[1],), op, "bias")
        y += bias.reshape((1, -1) + (1,) * (x.ndim - 2))    # (1, C_out, 1, ...) broadcast
    return y


def conv_transpose_backward_input(grad_out, w, input_shape, stride=1, padding=0,
                                  output_padding=0, dilation=1, groups=1):
    """Gradient of ``conv_transpose_forward`` with respect to x.

    grad_out: (N, C_out, *out), w: (C_in, C_out/groups, *kernel) -> grad_x: (N, C_in, *in).
    Computed as conv_forward(grad_out, w), keeping the first ``in`` positions per dim
    (when output_padding >= stride the plain conv would produce a few more).
    """
    op = "conv_transpose_backward_input"
    grad_out, dtype = _as_float_array(grad_out, w)
    w = np.asarray(w).astype(dtype, copy=False)
    stride, pads, dilation, out_shape = _conv_transpose_geometry(
        op, input_shape, w.shape, stride, padding, output_padding, dilation, groups,
        input_name="input_shape")
    _check_same_shape(grad_out.shape, out_shape, op, "grad_out")
    return _conv_forward_impl(grad_out, w, stride, pads, dilation, groups,
                              tuple(input_shape)[2:], dtype)


def conv_transpose_backward_weight(grad_out, x, weight_shape, stride=1, padding=0,
                                   output_padding=0, dilation=1, groups=1):
    """Gradient of ``conv_transpose_forward`` with respect to w.

    grad_out: (N, C_out, *out), x: (N, C_in, *in) -> grad_w: (C_in, C_out/groups, *kernel).
    Computed as conv_backward_weight with grad_out as the conv input and x as its grad_out.
    """
    op = "conv_transpose_backward_weight"
    grad_out, dtype = _as_float_array(grad_out, x)
    x = np.asarray(x).astype(dtype, copy=False)
    stride, pads, dilation, out_shape = _conv_transpose_geometry(
        op, x.shape, weight_shape, stride, padding, output_padding, dilation, groups,
        weight_name="weight_shape")
    _check_same_shape(grad_out.shape, out_shape, op, "grad_out")
    return _conv_backward_weight_impl(x, grad_out, tuple(weight_shape), stride, pads,
                                      dilation, groups, dtype)


# --------------------------------------------------------------------------- #
# max pooling
# --------------------------------------------------------------------------- #

def _tap_positions(offset, out_spatial, in_spatial, stride, pad, dilation):
    """For one kernel tap: the flat input index (into the in_spatial volume) read by every
    output position, and whether that position is inside the input (not padding).
    Both have shape ``out_spatial`` (each dim's coordinate broadcast along its own axis)."""
    nd = len(out_spatial)
    flat = np.zeros((1,) * nd, dtype=np.int64)
    valid = np.ones((1,) * nd, dtype=bool)
    plane_stride = 1
    for i in reversed(range(nd)):
        view = [1] * nd
        view[i] = out_spatial[i]
        pos = (np.arange(out_spatial[i]) * stride[i] - pad[i]
               + offset[i] * dilation[i]).reshape(view)      # input coordinate along dim i
        valid = valid & (pos >= 0) & (pos < in_spatial[i])
        flat = flat + pos * plane_stride
        plane_stride *= in_spatial[i]
    return flat, valid


def max_pool_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """N-d max pooling with indices, PyTorch ``max_pool{1,2,3}d(..., return_indices=True)``.

    x: (N, C, *in) -> (out, indices), both (N, C, *out); indices are int64 flat indices
    into each (N, C) plane of the input's spatial volume. Padding is implicit -inf and
    never selected. Ties go to the first maximum in row-major window order; a NaN wins
    (the last NaN in the window), as in PyTorch's CPU kernel.
    # out[n, c, p] = max over *kernel of x[n, c, p*s - pad + k*d]
    """
    op = "max_pool_forward"
    x, dtype = _as_float_array(x)
    kernel, stride, pad, dilation, out_shape = _pool_geometry(
        op, x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    in_spatial, out_spatial = x.shape[2:], out_shape[2:]
    # pad -inf before; after, as much as the last (ceil_mode) window needs
    after = [max(0, (o - 1) * s + d * (k - 1) + 1 - (n + p))
             for o, s, d, k, n, p in zip(out_spatial, stride, dilation, kernel, in_spatial, pad)]
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(zip(pad, after)), constant_values=-np.inf)
    best = np.full(out_shape, -np.inf, dtype=dtype)          # (N, C, *out)
    best_idx = np.full(out_shape, -1, dtype=np.int64)        # -1: no input element seen yet
    for off in np.ndindex(*kernel):                          # row-major window order
        v = xp[(Ellipsis,) + _window(off, stride, dilation, out_spatial)]  # (N, C, *out)
        flat, valid = _tap_positions(off, out_spatial, in_spatial, stride, pad, dilation)
        # PyTorch: take if val > max or isnan(val); the first valid element seeds the max
        take = valid & ((v > best) | np.isnan(v) | (best_idx < 0))
        best = np.where(take, v, best)
        best_idx = np.where(take, flat, best_idx)
    return best, best_idx


def max_pool_backward(grad_out, indices, input_shape):
    """Gradient of ``max_pool_forward``: scatter-add grad_out to the arg-max positions.

    grad_out, indices: (N, C, *out) -> grad_x: input_shape = (N, C, *in).
    # grad_x[n, c].flat[indices[n, c, p]] += grad_out[n, c, p]
    """
    op = "max_pool_backward"
    grad_out, dtype = _as_float_array(grad_out)
    indices = np.asarray(indices)
    input_shape = _as_shape(input_shape, op, "input_shape")
    nd = _spatial_ndim(input_shape, op, "input_shape")
    _check_same_shape(indices.shape, grad_out.shape, op, "indices")
    if grad_out.ndim != nd + 2 or grad_out.shape[:2] != input_shape[:2]:
        raise ValueError(f"{op}: grad_out must have shape {_fmt(input_shape[:2])} + *out "
                         f"(N, C, *out) to match input_shape {_fmt(input_shape)}, "
                         f"got {_fmt(grad_out.shape)}")
    if not np.issubdtype(indices.dtype, np.integer):
        raise TypeError(f"{op}: indices must be an integer array, got dtype {indices.dtype}")
    NC = input_shape[0] * input_shape[1]
    L = int(np.prod(input_shape[2:]))
    if indices.size and (indices.min() < 0 or indices.max() >= L):
        raise ValueError(f"{op}: indices must be in [0, {L}) for input spatial size "
                         f"{_fmt(input_shape[2:])}, got range [{indices.min()}, "
                         f"{indices.max()}]")
    gx = np.zeros((NC, L), dtype=dtype)                      # (N*C, prod(in))
    rows = np.arange(NC).reshape(NC, 1)                      # broadcast over (N*C, prod(out))
    np.add.at(gx, (rows, indices.reshape(NC, -1)), grad_out.reshape(NC, -1))
    return gx.reshape(input_shape)


# --------------------------------------------------------------------------- #
# average pooling
# --------------------------------------------------------------------------- #

def _avg_pool_divisor(in_spatial, out_spatial, kernel, stride, pad, count_include_pad,
                      divisor_override, dtype):
    """The divisor of every output position, shape ``out_spatial``, as in PyTorch:

    per dim a window is [start, start+k) with start = o*s - pad; it is first clipped to
    the padded input [-pad, in+pad) (matters only for ceil_mode windows) giving the
    count_include_pad size, then to the input [0, in) giving the count of real elements.
    The divisor is the product over dims. Windows with no real element output 0.
    """
    nd = len(out_spatial)
    with_pad = np.ones((1,) * nd, dtype=np.int64)
    real = np.ones((1,) * nd, dtype=np.int64)
    for i in range(nd):
        view = [1] * nd
        view[i] = out_spatial[i]
        start = np.arange(out_spatial[i]) * stride[i] - pad[i]
        end = np.minimum(start + kernel[i], in_spatial[i] + pad[i])
        with_pad = with_pad * (end - start).reshape(view)
        real = real * np.maximum(np.minimum(end, in_spatial[i]) - np.maximum(start, 0),
                                 0).reshape(view)
    if divisor_override is not None:
        divisor = np.full(out_spatial, divisor_override, dtype=np.int64)
    elif count_include_pad:
        divisor = np.broadcast_to(with_pad, out_spatial)
    else:
        divisor = np.broadcast_to(real, out_spatial)
    # empty windows: the sum is 0 and PyTorch writes 0; divide by 1 to keep it 0
    divisor = np.where(np.broadcast_to(real, out_spatial) == 0, 1, divisor)
    return divisor.astype(dtype)


def _avg_pool_setup(op, shape, kernel_size, stride, padding, ceil_mode, divisor_override):
    if divisor_override is not None:
        if not _is_int(divisor_override):
            raise TypeError(f"{op}: divisor_override must be an int or None, "
                            f"got {divisor_override!r}")
        if divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must not be zero, got 0")
    return _pool_geometry(op, shape, kernel_size, stride, padding, 1, ceil_mode)


def avg_pool_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
    """N-d average pooling, PyTorch ``avg_pool{1,2,3}d`` semantics.

    x: (N, C, *in) -> (N, C, *out).
    # out[n, c, p] = (sum over *kernel of xpad[n, c, p*s + k]) / divisor[p]
    divisor: divisor_override if given; else the window size clipped to the padded input
    (count_include_pad=True) or the number of real input elements in the window.
    """
    op = "avg_pool_forward"
    x, dtype = _as_float_array(x)
    kernel, stride, pad, _, out_shape = _avg_pool_setup(
        op, x.shape, kernel_size, stride, padding, ceil_mode, divisor_override)
    in_spatial, out_spatial = x.shape[2:], out_shape[2:]
    ones = (1,) * len(kernel)
    after = [max(0, (o - 1) * s + k - (n + p))
             for o, s, k, n, p in zip(out_spatial, stride, kernel, in_spatial, pad)]
    xp = np.pad(x, ((0, 0), (0, 0)) + tuple(zip(pad, after)))  # zeros
    total = np.zeros(out_shape, dtype=dtype)                    # (N, C, *out)
    for off in np.ndindex(*kernel):
        total += xp[(Ellipsis,) + _window(off, stride, ones, out_spatial)]
    divisor = _avg_pool_divisor(in_spatial, out_spatial, kernel, stride, pad,
                                count_include_pad, divisor_override, dtype)
    return total / divisor


def avg_pool_backward(grad_out, input_shape, kernel_size, stride=None, padding=0,
                      ceil_mode=False, count_include_pad=True, divisor_override=None):
    """Gradient of ``avg_pool_forward``.

    grad_out: (N, C, *out) -> grad_x: input_shape = (N, C, *in).
    # grad_xpad[n, c, p*s + k] += grad_out[n, c, p] / divisor[p]; then crop padding
    """
    op = "avg_pool_backward"
    grad_out, dtype = _as_float_array(grad_out)
    kernel, stride, pad, _, out_shape = _avg_pool_setup(
        op, input_shape, kernel_size, stride, padding, ceil_mode, divisor_override)
    _check_same_shape(grad_out.shape, out_shape, op, "grad_out")
    input_shape = tuple(input_shape)
    in_spatial, out_spatial = input_shape[2:], out_shape[2:]
    ones = (1,) * len(kernel)
    after = [max(0, (o - 1) * s + k - (n + p))
             for o, s, k, n, p in zip(out_spatial, stride, kernel, in_spatial, pad)]
    padded = tuple(p + n + a for p, n, a in zip(pad, in_spatial, after))
    divisor = _avg_pool_divisor(in_spatial, out_spatial, kernel, stride, pad,
                                count_include_pad, divisor_override, dtype)
    g = grad_out / divisor                                       # (N, C, *out)
    gxp = np.zeros(input_shape[:2] + padded, dtype=dtype)        # (N, C, *padded)
    for off in np.ndindex(*kernel):
        gxp[(Ellipsis,) + _window(off, stride, ones, out_spatial)] += g
    crop = tuple(slice(p, p + n) for p, n in zip(pad, in_spatial))
    return gxp[(Ellipsis,) + crop]
