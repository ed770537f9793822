"""Convolution and transposed convolution, 1d/2d/3d: forward and backward side by side.

float32 runs on the compiled kernels (convengine.kernels.conv -> convengine._C); other float
dtypes (float64 for gradcheck) run on the NumPy reference backend, with the same semantics.
Shapes (nd = 1, 2 or 3 spatial dims):
    x (N, C, *in)   conv weight (OC, C/groups, *k)   transposed weight (C_in, C_out/groups, *k)
    conv: y (N, OC, *out)                            transposed: y (N, C_out, *out)
The transposed convolution is the adjoint of the convolution with the same weight, so each of
its passes is one of the convolution's:
    ConvTranspose.forward          = conv backward-input
    ConvTranspose backward-input   = conv forward
    ConvTranspose backward-weight  = conv backward-weight with x and grad_out swapped
"""

import numpy as np

from ..autograd import Function
from ..backends import reference
from ..kernels import conv as kernels


def _compiled(*arrays):
    """True when every array is float32 (the compiled kernels' dtype)."""
    return all(a is None or a.dtype == np.float32 for a in arrays)


def _relu_mask(out):
    return out > 0


class Conv(Function):
    """y = relu?(conv(x, weight) + bias).

    Parameters (already normalised by convengine.nn.functional): stride and dilation tuples,
    pads a tuple of (before, after) pairs, groups an int; relu fuses max(., 0) into the GEMM
    epilogue. Backward computes only the gradients whose inputs need one and keeps only what they
    need: weight for grad x, x for grad weight, the output's sign pattern when relu is fused.
    """

    def forward(self, x, weight, bias=None, *, stride, pads, dilation, groups, relu=False):
        self.stride, self.pads, self.dilation, self.groups = stride, pads, dilation, groups
        self.relu = relu
        need_x, need_w, need_b = (self.needs_input_grad + (False, False, False))[:3]
        if _compiled(x, weight, bias):
            x = np.ascontiguousarray(x)
            weight = np.ascontiguousarray(weight)
            bias = None if bias is None else np.ascontiguousarray(bias)
            y = kernels.conv_forward(x, weight, bias, stride, pads, dilation, groups, relu)
        else:
            y = reference.conv_forward(x, weight, bias, stride, pads, dilation, groups)
            if relu:
                y = np.maximum(y, 0)
        self.x_shape, self.w_shape = x.shape, weight.shape
        self.x = x if need_w else None             # grad weight = f(grad_out, x)
        self.weight = weight if need_x else None   # grad x = f(grad_out, weight)
        self.mask = _relu_mask(y) if relu and (need_x or need_w or need_b) else None
        return y

    def backward(self, grad):
        need_x, need_w, need_b = (self.needs_input_grad + (False, False, False))[:3]
        if self.mask is not None:
            grad = np.where(self.mask, grad, np.zeros_like(grad))
        args = (self.stride, self.pads, self.dilation, self.groups)
        compiled = grad.dtype == np.float32 and _compiled(self.x, self.weight)
        grad_x = grad_w = grad_b = None
        if compiled:
            grad = np.ascontiguousarray(grad)
            if need_x:
                grad_x = kernels.conv_backward_input(grad, self.weight, self.x_shape, *args)
            if need_w:
                grad_w = kernels.conv_backward_weight(grad, self.x, self.w_shape, *args)
            if need_b:
                grad_b = kernels.conv_backward_bias(grad)
        else:
            if need_x:
                grad_x = reference.conv_backward_input(grad, self.weight, self.x_shape, *args)
            if need_w:
                grad_w = reference.conv_backward_weight(grad, self.x, self.w_shape, *args)
            if need_b:
                grad_b = reference.conv_backward_bias(grad)
        grads = (grad_x, grad_w, grad_b)
        return grads[:len(self.inputs)]


class ConvTranspose(Function):
    """y = relu?(conv_transpose(x, weight) + bias); see the module docstring for the passes."""

    def forward(self, x, weight, bias=None, *, stride, padding, output_padding, dilation, groups,
                relu=False):
        self.args = (stride, padding, output_padding, dilation, groups)
        need_x, need_w, need_b = (self.needs_input_grad + (False, False, False))[:3]
        if _compiled(x, weight, bias):
            x = np.ascontiguousarray(x)
            weight = np.ascontiguousarray(weight)
            bias = None if bias is None else np.ascontiguousarray(bias)
            y = kernels.conv_transpose_forward(x, weight, bias, *self.args, relu=relu)
        else:
            y = reference.conv_transpose_forward(x, weight, bias, *self.args)
            if relu:
                y = np.maximum(y, 0)
        self.x_shape, self.w_shape = x.shape, weight.shape
        self.x = x if need_w else None
        self.weight = weight if need_x else None
        self.mask = _relu_mask(y) if relu and (need_x or need_w or need_b) else None
        return y

    def backward(self, grad):
        need_x, need_w, need_b = (self.needs_input_grad + (False, False, False))[:3]
        if self.mask is not None:
            grad = np.where(self.mask, grad, np.zeros_like(grad))
        compiled = grad.dtype == np.float32 and _compiled(self.x, self.weight)
        grad_x = grad_w = grad_b = None
        if compiled:
            grad = np.ascontiguousarray(grad)
            if need_x:
                grad_x = kernels.conv_transpose_backward_input(grad, self.weight, self.x_shape,
                                                               *self.args)
            if need_w:
                grad_w = kernels.conv_transpose_backward_weight(grad, self.x, self.w_shape,
                                                                *self.args)
            if need_b:
                grad_b = kernels.conv_backward_bias(grad)
        else:
            if need_x:
                grad_x = reference.conv_transpose_backward_input(grad, self.weight, self.x_shape,
                                                                 *self.args)
            if need_w:
                grad_w = reference.conv_transpose_backward_weight(grad, self.x, self.w_shape,
                                                                  *self.args)
            if need_b:
                grad_b = reference.conv_backward_bias(grad)
        grads = (grad_x, grad_w, grad_b)
        return grads[:len(self.inputs)]


# --------------------------------------------------------------------------- #
# functional wrappers (re-exported by convengine.nn.functional)
# --------------------------------------------------------------------------- #
# PyTorch's torch.nn.functional signatures and defaults, plus one keyword-only extension:
# padding_mode ('zeros', 'reflect', 'replicate' or 'circular', as nn.Conv*d takes it), which pads
# the input with convengine.functional.pad (differentiable) and then convolves without padding.

_PAD_MODES = {"zeros": None, "reflect": "reflect", "replicate": "replicate",
              "circular": "circular"}


def _as_float_tensor(value, op, name):
    from ..creation import as_tensor

    t = as_tensor(value)
    if not np.issubdtype(t.dtype, np.floating):
        raise TypeError(f"{op}: {name} must be a floating-point tensor (float32 runs on the "
                        f"compiled kernels), got dtype {t.dtype}")
    return t


def _batched(input, nd, op):
    """input with a batch dim (PyTorch also takes unbatched (C, *spatial)); and whether it was
    added."""
    if input.ndim == nd + 2:
        return input, False
    if input.ndim == nd + 1:
        from ..functional import unsqueeze

        return unsqueeze(input, 0), True
    raise ValueError(f"{op}: input must be {nd + 2}-D (N, C, *spatial) or {nd + 1}-D unbatched "
                     f"(C, *spatial), got shape {tuple(input.shape)} (ndim {input.ndim})")


def _conv(op, nd, input, weight, bias, stride, padding, dilation, groups, padding_mode):
    input = _as_float_tensor(input, op, "input")
    weight = _as_float_tensor(weight, op, "weight")
    bias = None if bias is None else _as_float_tensor(bias, op, "bias")
    if padding_mode not in _PAD_MODES:
        raise ValueError(f"{op}: padding_mode must be 'zeros', 'reflect', 'replicate' or "
                         f"'circular', got {padding_mode!r}")
    input, unbatched = _batched(input, nd, op)
    if weight.ndim != nd + 2:
        raise ValueError(f"{op}: weight must be {nd + 2}-D (out_channels, in_channels/groups, "
                         f"*kernel), got shape {tuple(weight.shape)}")
    stride, pads, dilation, out_shape = kernels.conv_geometry(
        op, input.shape, weight.shape, stride, padding, dilation, groups, nd=nd)
    if bias is not None and tuple(bias.shape) != (out_shape[1],):
        raise ValueError(f"{op}: bias must have shape ({out_shape[1]},) (one value per output "
                         f"channel), got {tuple(bias.shape)}")
    if _PAD_MODES[padding_mode] is not None and any(p != (0, 0) for p in pads):
        from ..functional import pad

        flat = [q for pair in reversed(pads) for q in pair]  # last dim first, as F.pad
        input = pad(input, flat, mode=_PAD_MODES[padding_mode])
        pads = ((0, 0),) * nd
    out = Conv.apply(input, weight, bias, stride=stride, pads=pads, dilation=dilation,
                     groups=groups)
    if unbatched:
        from ..functional import squeeze

        out = squeeze(out, 0)
    return out


def _conv_transpose(op, nd, input, weight, bias, stride, padding, output_padding, groups,
                    dilation):
    input = _as_float_tensor(input, op, "input")
    weight = _as_float_tensor(weight, op, "weight")
    bias = None if bias is None else _as_float_tensor(bias, op, "bias")
    input, unbatched = _batched(input, nd, op)
    if weight.ndim != nd + 2:
        raise ValueError(f"{op}: weight must be {nd + 2}-D (in_channels, out_channels/groups, "
                         f"*kernel), got shape {tuple(weight.shape)}")
    stride, pad, out_pad, dilation, out_shape = kernels.conv_transpose_geometry(
        op, input.shape, weight.shape, stride, padding, output_padding, dilation, groups, nd=nd)
    if bias is not None and tuple(bias.shape) != (out_shape[1],):
        raise ValueError(f"{op}: bias must have shape ({out_shape[1]},) (one value per output "
                         f"channel), got {tuple(bias.shape)}")
    out = ConvTranspose.apply(input, weight, bias, stride=stride, padding=pad,
                              output_padding=out_pad, dilation=dilation, groups=groups)
    if unbatched:
        from ..functional import squeeze

        out = squeeze(out, 0)
    return out


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros"):
    """1-D convolution: input (N, C, L), weight (OC, C/groups, K) -> (N, OC, L_out).
    padding: int, (p,), ((before, after),), 'valid' or 'same' (any stride; TensorFlow's split)."""
    return _conv("conv1d", 1, input, weight, bias, stride, padding, dilation, groups,
                 padding_mode)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros"):
    """2-D convolution: input (N, C, H, W), weight (OC, C/groups, KH, KW) -> (N, OC, OH, OW)."""
    return _conv("conv2d", 2, input, weight, bias, stride, padding, dilation, groups,
                 padding_mode)


def conv3d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *,
           padding_mode="zeros"):
    """3-D convolution: input (N, C, D, H, W), weight (OC, C/groups, KD, KH, KW)."""
    return _conv("conv3d", 3, input, weight, bias, stride, padding, dilation, groups,
                 padding_mode)


def conv_transpose1d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """1-D transposed convolution: input (N, C_in, L), weight (C_in, C_out/groups, K)."""
    return _conv_transpose("conv_transpose1d", 1, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """2-D transposed convolution: input (N, C_in, H, W), weight (C_in, C_out/groups, KH, KW)."""
    return _conv_transpose("conv_transpose2d", 2, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)


def conv_transpose3d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """3-D transposed convolution: input (N, C_in, D, H, W), weight (C_in, C_out/groups, *k)."""
    return _conv_transpose("conv_transpose3d", 3, input, weight, bias, stride, padding,
                           output_padding, groups, dilation)
