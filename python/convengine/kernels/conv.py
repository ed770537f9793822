"""Convolution kernels, NumPy in and NumPy out: forward and each backward pass as separate calls.

Layouts are PyTorch's: ``x`` is ``(N, C, *spatial)`` with 1, 2 or 3 spatial dims, a convolution
weight is ``(OC, C/groups, *kernel)``, a transposed convolution weight ``(C_in, C_out/groups,
*kernel)``. Arrays must be float32 (other dtypes raise TypeError; non-contiguous inputs are
copied); ``out=`` takes a preallocated C-contiguous float32 array of the result's shape.

Parameters:

- ``stride``, ``dilation``, ``output_padding``: an int or one int per spatial dim.
- ``padding`` (convolution): an int, one int per dim, one ``(before, after)`` pair per dim,
  ``'valid'`` (no padding) or ``'same'``. ``'same'`` makes the output ``ceil(in / stride)`` long
  in every dim, for any stride, and splits the padding as TensorFlow does: total
  ``max((ceil(in/s) - 1)*s + d*(k-1) + 1 - in, 0)``, ``total // 2`` before and the rest (the odd
  element) after. For stride 1 that is PyTorch's ``'same'`` (which PyTorch allows only there).
- ``padding`` (transposed convolution): an int or one int per dim, as in PyTorch.

Padding here is zero padding; ``convengine.nn.functional.conv*d(..., padding_mode=...)`` pads
with reflect/replicate/circular first.

Memory: no pass builds the column matrix of a whole batch (or of an image that does not fit): the
scratch memory of one call is at most ``convengine.get_workspace_limit()`` bytes (default
64 MiB, ``convengine.set_workspace_limit``), reused from call to call.
"""

import numbers

import numpy as np

from .. import _C

__all__ = [
    "conv_forward",
    "conv_backward_input",
    "conv_backward_weight",
    "conv_backward_bias",
    "conv_transpose_forward",
    "conv_transpose_backward_input",
    "conv_transpose_backward_weight",
    "conv_geometry",
    "conv_transpose_geometry",
    "same_padding",
    "set_workspace_limit",
    "get_workspace_limit",
    "workspace_peak_bytes",
    "reset_workspace_peak",
]


# --------------------------------------------------------------------------- #
# argument checks, shared with convengine.functions.conv
# --------------------------------------------------------------------------- #

def _is_int(v):
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


def _fmt(shape):
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def _ints(value, nd, op, name, minimum):
    """An int or a sequence of nd ints, each >= minimum, as a tuple of nd ints."""
    if _is_int(value):
        values = (int(value),) * nd
    elif isinstance(value, (tuple, list)):
        if not all(_is_int(v) for v in value):
            raise TypeError(f"{op}: {name} must be an int or a tuple of {nd} ints, got {value!r}")
        if len(value) != nd:
            raise ValueError(f"{op}: {name} must be an int or a tuple of {nd} ints (one per "
                             f"spatial dim), got {len(value)} values {tuple(value)}")
        values = tuple(int(v) for v in value)
    else:
        raise TypeError(f"{op}: {name} must be an int or a tuple of {nd} ints, got {value!r}")
    if any(v < minimum for v in values):
        raise ValueError(f"{op}: {name} must be >= {minimum} in every dim, got {values}")
    return values


def _shape(shape, op, name):
    try:
        dims = tuple(shape)
    except TypeError:
        raise TypeError(f"{op}: {name} must be a tuple of ints, got {shape!r}") from None
    if not all(_is_int(s) for s in dims):
        raise TypeError(f"{op}: {name} must be a tuple of ints, got {shape!r}")
    if any(s < 0 for s in dims):
        raise ValueError(f"{op}: {name} must not have negative sizes, got {_fmt(dims)}")
    return tuple(int(s) for s in dims)


def _spatial_dims(shape, op, name, nd=None):
    if nd is not None and len(shape) != nd + 2:
        raise ValueError(f"{op}: {name} must be {nd + 2}-D (N, C, *spatial) with {nd} spatial "
                         f"dim{'s' if nd > 1 else ''}, got shape {_fmt(shape)} (ndim {len(shape)})")
    if len(shape) not in (3, 4, 5):
        raise ValueError(f"{op}: {name} must be 3-D, 4-D or 5-D (N, C, *spatial), got shape "
                         f"{_fmt(shape)} (ndim {len(shape)})")
    return len(shape) - 2


def same_padding(input_spatial, kernel, stride, dilation):
    """'same' padding as (before, after) pairs: output ceil(in / stride), TensorFlow's split
    (total // 2 before, the rest after); for stride 1 this is PyTorch's 'same'."""
    pads = []
    for n, k, s, d in zip(input_spatial, kernel, stride, dilation):
        out = -(-n // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    return tuple(pads)


def _padding(padding, nd, op, input_spatial, kernel, stride, dilation):
    """Convolution padding as nd (before, after) pairs of non-negative ints."""
    if isinstance(padding, str):
        if padding == "valid":
            return ((0, 0),) * nd
        if padding == "same":
            return same_padding(input_spatial, kernel, stride, dilation)
        raise ValueError(f"{op}: padding string must be 'valid' or 'same', got {padding!r}")
    if _is_int(padding):
        pads = ((int(padding), int(padding)),) * nd
    elif isinstance(padding, (tuple, list)):
        if len(padding) != nd:
            raise ValueError(f"{op}: padding must be an int, a tuple of {nd} ints or {nd} "
                             f"(before, after) pairs, got {len(padding)} values {tuple(padding)}")
        pads = []
        for p in padding:
            if _is_int(p):
                pads.append((int(p), int(p)))
            elif isinstance(p, (tuple, list)) and len(p) == 2 and all(_is_int(q) for q in p):
                pads.append((int(p[0]), int(p[1])))
            else:
                raise TypeError(f"{op}: each entry of padding must be an int or a (before, "
                                f"after) pair of ints, got {p!r}")
        pads = tuple(pads)
    else:
        raise TypeError(f"{op}: padding must be an int, a tuple of ints, 'valid' or 'same', "
                        f"got {padding!r}")
    if any(q < 0 for p in pads for q in p):
        raise ValueError(f"{op}: padding must be non-negative, got {pads}")
    return pads


def conv_geometry(op, x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, nd=None,
                  x_name="input", w_name="weight"):
    """Checks a convolution's arguments; returns (stride, pads, dilation, out_shape) with pads as
    (before, after) pairs and out_shape = (N, OC, *out). Errors name `op` and the argument."""
    x_shape = _shape(x_shape, op, x_name)
    w_shape = _shape(w_shape, op, w_name)
    nd = _spatial_dims(x_shape, op, x_name, nd)
    if len(w_shape) != nd + 2:
        raise ValueError(f"{op}: {w_name} must be {nd + 2}-D (out_channels, in_channels/groups, "
                         f"*kernel) to match {x_name} of shape {_fmt(x_shape)}, got shape "
                         f"{_fmt(w_shape)}")
    if not _is_int(groups):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    N, C = x_shape[:2]
    OC, Cg = w_shape[:2]
    kernel = w_shape[2:]
    if C % groups != 0:
        raise ValueError(f"{op}: groups={groups} must divide the input channels, but {x_name} "
                         f"has {C} channels (shape {_fmt(x_shape)})")
    if OC % groups != 0 or OC == 0:
        raise ValueError(f"{op}: groups={groups} must divide the output channels, but {w_name} "
                         f"has {OC} (shape {_fmt(w_shape)})")
    if Cg * groups != C:
        raise ValueError(f"{op}: channel mismatch: {w_name} of shape {_fmt(w_shape)} expects "
                         f"{Cg * groups} input channels (in_channels/groups={Cg}, groups="
                         f"{groups}), but {x_name} of shape {_fmt(x_shape)} has {C}; expected "
                         f"{w_name} shape {_fmt((OC, C // groups) + kernel)}")
    if any(k < 1 for k in kernel):
        raise ValueError(f"{op}: kernel size must be >= 1 in every dim, got {w_name} shape "
                         f"{_fmt(w_shape)}")
    if any(n < 1 for n in x_shape[2:]):
        raise ValueError(f"{op}: {x_name} spatial size must be >= 1 in every dim, got shape "
                         f"{_fmt(x_shape)}")
    stride = _ints(stride, nd, op, "stride", 1)
    dilation = _ints(dilation, nd, op, "dilation", 1)
    pads = _padding(padding, nd, op, x_shape[2:], kernel, stride, dilation)
    out = tuple((n + lo + hi - d * (k - 1) - 1) // s + 1 if n + lo + hi - d * (k - 1) - 1 >= 0
                else 0
                for n, (lo, hi), k, s, d in zip(x_shape[2:], pads, kernel, stride, dilation))
    if any(o < 1 for o in out):
        raise ValueError(
            f"{op}: output size would be {out} (must be >= 1 in every dim): {x_name} spatial "
            f"size {_fmt(x_shape[2:])} with padding {pads} is smaller than the kernel {kernel} "
            f"with dilation {dilation} (effective size "
            f"{tuple(d * (k - 1) + 1 for k, d in zip(kernel, dilation))})")
    return stride, pads, dilation, (N, OC) + out


def conv_transpose_geometry(op, x_shape, w_shape, stride=1, padding=0, output_padding=0,
                            dilation=1, groups=1, nd=None, x_name="input", w_name="weight"):
    """Checks a transposed convolution's arguments; returns (stride, padding, output_padding,
    dilation, out_shape), out = (in-1)*s - 2*p + d*(k-1) + output_padding + 1."""
    x_shape = _shape(x_shape, op, x_name)
    w_shape = _shape(w_shape, op, w_name)
    nd = _spatial_dims(x_shape, op, x_name, nd)
    if len(w_shape) != nd + 2:
        raise ValueError(f"{op}: {w_name} must be {nd + 2}-D (in_channels, out_channels/groups, "
                         f"*kernel) to match {x_name} of shape {_fmt(x_shape)}, got shape "
                         f"{_fmt(w_shape)}")
    if not _is_int(groups):
        raise TypeError(f"{op}: groups must be an int, got {groups!r}")
    if groups < 1:
        raise ValueError(f"{op}: groups must be >= 1, got {groups}")
    N, C_in = x_shape[:2]
    kernel = w_shape[2:]
    if C_in % groups != 0 or C_in == 0:
        raise ValueError(f"{op}: groups={groups} must divide the input channels, but {x_name} "
                         f"has {C_in} channels (shape {_fmt(x_shape)})")
    if w_shape[0] != C_in:
        raise ValueError(f"{op}: channel mismatch: {w_name} must have shape ({C_in}, "
                         f"out_channels/groups, *kernel) for {x_name} with {C_in} channels, "
                         f"got {_fmt(w_shape)}")
    if w_shape[1] < 1:
        raise ValueError(f"{op}: {w_name} must have out_channels/groups >= 1, got shape "
                         f"{_fmt(w_shape)}")
    if any(k < 1 for k in kernel):
        raise ValueError(f"{op}: kernel size must be >= 1 in every dim, got {w_name} shape "
                         f"{_fmt(w_shape)}")
    if any(n < 1 for n in x_shape[2:]):
        raise ValueError(f"{op}: {x_name} spatial size must be >= 1 in every dim, got shape "
                         f"{_fmt(x_shape)}")
    stride = _ints(stride, nd, op, "stride", 1)
    dilation = _ints(dilation, nd, op, "dilation", 1)
    if isinstance(padding, str):
        raise ValueError(f"{op}: padding must be an int or a tuple of {nd} ints (strings are "
                         f"not supported by transposed convolutions), got {padding!r}")
    pad = _ints(padding, nd, op, "padding", 0)
    out_pad = _ints(output_padding, nd, op, "output_padding", 0)
    for o, s, d in zip(out_pad, stride, dilation):
        if o >= max(s, d):
            raise ValueError(f"{op}: output_padding must be smaller than either stride or "
                             f"dilation in every dim, got output_padding={out_pad}, "
                             f"stride={stride}, dilation={dilation}")
    out = tuple((n - 1) * s - 2 * p + d * (k - 1) + o + 1
                for n, s, p, d, k, o in zip(x_shape[2:], stride, pad, dilation, kernel, out_pad))
    if any(o < 1 for o in out):
        raise ValueError(f"{op}: output size would be {out} (must be >= 1 in every dim) for "
                         f"{x_name} spatial size {_fmt(x_shape[2:])}, kernel {kernel}, stride "
                         f"{stride}, padding {pad}, dilation {dilation}, output_padding {out_pad}")
    return stride, pad, out_pad, dilation, (N, w_shape[1] * groups) + out


def _f32(a, op, name):
    """a as a C-contiguous float32 ndarray; TypeError for anything but float32."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{op}: {name} must be a numpy.ndarray, got {type(a).__name__}")
    if a.dtype != np.float32:
        raise TypeError(f"{op}: {name} must have dtype float32, got {a.dtype}")
    return np.ascontiguousarray(a)


def _split(pads):
    return [p[0] for p in pads], [p[1] for p in pads]


# --------------------------------------------------------------------------- #
# convolution
# --------------------------------------------------------------------------- #

def conv_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, relu=False,
                 out=None):
    """relu?(conv(x, weight) + bias): x (N, C, *in), weight (OC, C/groups, *k) -> (N, OC, *out).

    Bias and ReLU are applied in the GEMM epilogue (no extra pass over the output)."""
    op = "conv_forward"
    x, weight = _f32(x, op, "x"), _f32(weight, op, "weight")
    stride, pads, dilation, out_shape = conv_geometry(op, x.shape, weight.shape, stride, padding,
                                                      dilation, groups, x_name="x")
    if bias is not None:
        bias = _f32(bias, op, "bias")
        if bias.shape != (weight.shape[0],):
            raise ValueError(f"{op}: bias must have shape ({weight.shape[0]},), got "
                             f"{_fmt(bias.shape)}")
    before, after = _split(pads)
    return _C.conv_forward(x, weight, bias, list(stride), before, list(dilation), groups,
                           bool(relu), after, out)


def conv_backward_input(grad_out, weight, input_shape, stride=1, padding=0, dilation=1, groups=1,
                        out=None):
    """d(loss)/dx of conv_forward: grad_out (N, OC, *out), weight -> (input_shape)."""
    op = "conv_backward_input"
    grad_out, weight = _f32(grad_out, op, "grad_out"), _f32(weight, op, "weight")
    stride, pads, dilation, out_shape = conv_geometry(op, input_shape, weight.shape, stride,
                                                      padding, dilation, groups,
                                                      x_name="input_shape")
    if grad_out.shape != out_shape:
        raise ValueError(f"{op}: grad_out must have shape {_fmt(out_shape)}, got "
                         f"{_fmt(grad_out.shape)}")
    before, after = _split(pads)
    return _C.conv_backward_input(grad_out, weight, list(input_shape), list(stride), before,
                                  list(dilation), groups, after, out)


def conv_backward_weight(grad_out, x, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                         out=None):
    """d(loss)/dweight of conv_forward: grad_out (N, OC, *out), x -> (weight_shape)."""
    op = "conv_backward_weight"
    grad_out, x = _f32(grad_out, op, "grad_out"), _f32(x, op, "x")
    stride, pads, dilation, out_shape = conv_geometry(op, x.shape, weight_shape, stride, padding,
                                                      dilation, groups, x_name="x",
                                                      w_name="weight_shape")
    if grad_out.shape != out_shape:
        raise ValueError(f"{op}: grad_out must have shape {_fmt(out_shape)}, got "
                         f"{_fmt(grad_out.shape)}")
    before, after = _split(pads)
    return _C.conv_backward_weight(grad_out, x, list(weight_shape), list(stride), before,
                                   list(dilation), groups, after, out)


def conv_backward_bias(grad_out, out=None):
    """d(loss)/dbias of a (transposed) convolution: grad_out (N, C, ...) summed over all but C."""
    op = "conv_backward_bias"
    grad_out = _f32(grad_out, op, "grad_out")
    if grad_out.ndim < 2:
        raise ValueError(f"{op}: grad_out must be at least 2-D (N, C, ...), got shape "
                         f"{_fmt(grad_out.shape)}")
    return _C.conv_backward_bias(grad_out, out)


# --------------------------------------------------------------------------- #
# transposed convolution
# --------------------------------------------------------------------------- #

def conv_transpose_forward(x, weight, bias=None, stride=1, padding=0, output_padding=0,
                           dilation=1, groups=1, relu=False, out=None):
    """Transposed convolution: x (N, C_in, *in), weight (C_in, C_out/groups, *k) ->
    (N, C_out, *out), out = (in-1)*stride - 2*padding + dilation*(k-1) + output_padding + 1."""
    op = "conv_transpose_forward"
    x, weight = _f32(x, op, "x"), _f32(weight, op, "weight")
    stride, pad, out_pad, dilation, out_shape = conv_transpose_geometry(
        op, x.shape, weight.shape, stride, padding, output_padding, dilation, groups, x_name="x")
    if bias is not None:
        bias = _f32(bias, op, "bias")
        if bias.shape != (out_shape[1],):
            raise ValueError(f"{op}: bias must have shape ({out_shape[1]},), got "
                             f"{_fmt(bias.shape)}")
    return _C.conv_transpose_forward(x, weight, bias, list(stride), list(pad), list(out_pad),
                                     list(dilation), groups, bool(relu), out)


def conv_transpose_backward_input(grad_out, weight, input_shape, stride=1, padding=0,
                                  output_padding=0, dilation=1, groups=1, out=None):
    """d(loss)/dx of conv_transpose_forward."""
    op = "conv_transpose_backward_input"
    grad_out, weight = _f32(grad_out, op, "grad_out"), _f32(weight, op, "weight")
    stride, pad, out_pad, dilation, out_shape = conv_transpose_geometry(
        op, input_shape, weight.shape, stride, padding, output_padding, dilation, groups,
        x_name="input_shape")
    if grad_out.shape != out_shape:
        raise ValueError(f"{op}: grad_out must have shape {_fmt(out_shape)}, got "
                         f"{_fmt(grad_out.shape)}")
    return _C.conv_transpose_backward_input(grad_out, weight, list(input_shape), list(stride),
                                            list(pad), list(out_pad), list(dilation), groups,
                                            out)


def conv_transpose_backward_weight(grad_out, x, weight_shape, stride=1, padding=0,
                                   output_padding=0, dilation=1, groups=1, out=None):
    """d(loss)/dweight of conv_transpose_forward."""
    op = "conv_transpose_backward_weight"
    grad_out, x = _f32(grad_out, op, "grad_out"), _f32(x, op, "x")
    stride, pad, out_pad, dilation, out_shape = conv_transpose_geometry(
        op, x.shape, weight_shape, stride, padding, output_padding, dilation, groups,
        x_name="x", w_name="weight_shape")
    if grad_out.shape != out_shape:
        raise ValueError(f"{op}: grad_out must have shape {_fmt(out_shape)}, got "
                         f"{_fmt(grad_out.shape)}")
    return _C.conv_transpose_backward_weight(grad_out, x, list(weight_shape), list(stride),
                                             list(pad), list(out_pad), list(dilation), groups,
                                             out)


# --------------------------------------------------------------------------- #
# workspace
# --------------------------------------------------------------------------- #

def set_workspace_limit(nbytes):
    """Caps the scratch memory of one convolution call (per calling thread), in bytes; the
    buffer is kept and reused between calls. Default 64 MiB. Smaller limits mean smaller tiles
    (a limit below 64 KiB is treated as 64 KiB, the smallest tiles every pass can use)."""
    if not _is_int(nbytes):
        raise TypeError(f"set_workspace_limit: nbytes must be an int, got {nbytes!r}")
    if nbytes < 0:
        raise ValueError(f"set_workspace_limit: nbytes must be >= 0, got {nbytes}")
    _C.set_workspace_limit(int(nbytes))


def get_workspace_limit():
    """The workspace cap in bytes (see set_workspace_limit)."""
    return _C.get_workspace_limit()


def workspace_peak_bytes():
    """The most bytes the convolution workspaces held at once since reset_workspace_peak()."""
    return _C.workspace_peak_bytes()


def reset_workspace_peak():
    _C.reset_workspace_peak()
