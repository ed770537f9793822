"""Convolution layers: Conv1d/2d/3d and ConvTranspose1d/2d/3d, with PyTorch's constructor
arguments, weight layouts, default initialisation and repr. The arithmetic is
nn.functional.conv{1,2,3}d / conv_transpose{1,2,3}d."""

import math
import numbers

import numpy as np

from .. import functional as F
from .. import init
from ..parameter import Parameter
from .module import Module

__all__ = ["Conv1d", "Conv2d", "Conv3d", "ConvTranspose1d", "ConvTranspose2d",
           "ConvTranspose3d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(value, n, name, owner):
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        return (int(value),) * n
    if isinstance(value, (tuple, list)) and len(value) == n and all(
            isinstance(v, numbers.Integral) for v in value):
        return tuple(int(v) for v in value)
    raise ValueError(f"{owner}: {name} must be an int or a tuple of {n} ints, got {value!r}")


class _ConvNd(Module):
    _dims = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 dilation=1, groups=1, bias=True, padding_mode="zeros", output_padding=0,
                 device=None, dtype=None):
        super().__init__()
        owner, n = type(self).__name__, self._dims
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(value, numbers.Integral) or value <= 0:
                raise ValueError(f"{owner}: {name} must be a positive int, got {value!r}")
        if not isinstance(groups, numbers.Integral) or groups <= 0:
            raise ValueError(f"{owner}: groups must be a positive integer, got {groups!r}")
        if in_channels % groups:
            raise ValueError(f"{owner}: in_channels ({in_channels}) must be divisible by groups "
                             f"({groups})")
        if out_channels % groups:
            raise ValueError(f"{owner}: out_channels ({out_channels}) must be divisible by "
                             f"groups ({groups})")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = _ntuple(kernel_size, n, "kernel_size", owner)
        if any(k <= 0 for k in self.kernel_size):
            raise ValueError(f"{owner}: kernel_size must be positive, got {kernel_size!r}")
        self.stride = _ntuple(stride, n, "stride", owner)
        if any(s <= 0 for s in self.stride):
            raise ValueError(f"{owner}: stride must be positive, got {stride!r}")
        self.dilation = _ntuple(dilation, n, "dilation", owner)
        if any(d <= 0 for d in self.dilation):
            raise ValueError(f"{owner}: dilation must be positive, got {dilation!r}")
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(f"{owner}: padding must be 'same', 'valid', an int or a tuple, "
                                 f"got {padding!r}")
            if self._transposed:
                raise ValueError(f"{owner}: padding={padding!r} is not supported for "
                                 f"transposed convolutions")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"{owner}: padding='same' is not supported for strided "
                                 f"convolutions")
            self.padding = padding
        else:
            self.padding = _ntuple(padding, n, "padding", owner)
            if any(p < 0 for p in self.padding):
                raise ValueError(f"{owner}: padding must be non-negative, got {padding!r}")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(f"{owner}: padding_mode must be one of {_PADDING_MODES}, got "
                             f"{padding_mode!r}")
        if self._transposed and padding_mode != "zeros":
            raise ValueError(f'{owner}: only "zeros" padding mode is supported')
        self.padding_mode = padding_mode
        self.output_padding = _ntuple(output_padding, n, "output_padding", owner)
        self.groups = int(groups)
        # F.pad's (last dim first) pairs for the non-zero padding modes.
        if isinstance(self.padding, str):
            pads = [0, 0] * n
            if self.padding == "same":
                for d, k, i in zip(self.dilation, self.kernel_size, range(n - 1, -1, -1)):
                    total = d * (k - 1)
                    pads[2 * i], pads[2 * i + 1] = total // 2, total - total // 2
            self._reversed_padding_repeated_twice = pads
        else:
            self._reversed_padding_repeated_twice = [p for p in reversed(self.padding)
                                                     for _ in range(2)]
        dtype = np.dtype(dtype or np.float32)
        if self._transposed:
            shape = (self.in_channels, self.out_channels // self.groups) + self.kernel_size
        else:
            shape = (self.out_channels, self.in_channels // self.groups) + self.kernel_size
        self.weight = Parameter(np.empty(shape, dtype=dtype))
        if bias:
            self.bias = Parameter(np.empty((self.out_channels,), dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self):
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def extra_repr(self):
        n = self._dims
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class _Conv(_ConvNd):
    _op = "conv2d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, 0, device, dtype)

    def _conv_forward(self, input, weight, bias):
        conv = getattr(F, self._op)
        if self.padding_mode != "zeros":
            padded = F.pad(input, self._reversed_padding_repeated_twice, mode=self.padding_mode)
            return conv(padded, weight, bias, self.stride, 0, self.dilation, self.groups)
        return conv(input, weight, bias, self.stride, self.padding, self.dilation, self.groups)

    def forward(self, input):
        return self._conv_forward(input, self.weight, self.bias)


class Conv1d(_Conv):
    """1-D convolution over (N, C_in, L); weight (C_out, C_in / groups, k)."""
    _dims, _op = 1, "conv1d"


class Conv2d(_Conv):
    """2-D convolution over (N, C_in, H, W); weight (C_out, C_in / groups, kH, kW)."""
    _dims, _op = 2, "conv2d"


class Conv3d(_Conv):
    """3-D convolution over (N, C_in, D, H, W); weight (C_out, C_in / groups, kD, kH, kW)."""
    _dims, _op = 3, "conv3d"


class _ConvTranspose(_ConvNd):
    _transposed = True
    _op = "conv_transpose2d"

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, output_padding, device, dtype)
        owner = type(self).__name__
        for op_, s, d in zip(self.output_padding, self.stride, self.dilation):
            if op_ < 0 or op_ >= max(s, d):
                raise ValueError(f"{owner}: output_padding {self.output_padding} must be "
                                 f"smaller than either stride {self.stride} or dilation "
                                 f"{self.dilation}")

    def _output_padding(self, input, output_size):
        if output_size is None:
            return self.output_padding
        n = self._dims
        output_size = tuple(output_size)
        non_spatial = 2 if input.ndim == n + 2 else 1
        if len(output_size) == non_spatial + n:
            output_size = output_size[non_spatial:]
        if len(output_size) != n:
            raise ValueError(f"{type(self).__name__}: output_size must have {n} or "
                             f"{n + non_spatial} elements, got {output_size}")
        result = []
        for d in range(n):
            min_size = ((input.shape[d + non_spatial] - 1) * self.stride[d]
                        - 2 * self.padding[d] + self.dilation[d] * (self.kernel_size[d] - 1) + 1)
            max_size = min_size + self.stride[d] - 1
            if not min_size <= output_size[d] <= max_size:
                raise ValueError(f"{type(self).__name__}: requested an output size of "
                                 f"{output_size}, but valid sizes range from {min_size} to "
                                 f"{max_size} along spatial dim {d}")
            result.append(output_size[d] - min_size)
        return tuple(result)

    def forward(self, input, output_size=None):
        output_padding = self._output_padding(input, output_size)
        conv = getattr(F, self._op)
        return conv(input, self.weight, self.bias, self.stride, self.padding, output_padding,
                    self.groups, self.dilation)


class ConvTranspose1d(_ConvTranspose):
    """Transposed 1-D convolution; weight (C_in, C_out / groups, k)."""
    _dims, _op = 1, "conv_transpose1d"


class ConvTranspose2d(_ConvTranspose):
    """Transposed 2-D convolution ("deconvolution"); weight (C_in, C_out / groups, kH, kW)."""
    _dims, _op = 2, "conv_transpose2d"


class ConvTranspose3d(_ConvTranspose):
    """Transposed 3-D convolution; weight (C_in, C_out / groups, kD, kH, kW)."""
    _dims, _op = 3, "conv_transpose3d"
