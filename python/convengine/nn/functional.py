"""PyTorch's torch.nn.functional counterpart: the functional operations convengine has."""

from ..functional import pad, relu

__all__ = ["pad", "relu"]

# ----- training stack: linear, normalisation, dropout, losses, interpolation ------------------
# (implementations live beside their Functions in convengine/functions/)
from ..functions.dropout import dropout, dropout1d, dropout2d, dropout3d  # noqa: E402
from ..functions.interpolation import interpolate  # noqa: E402
from ..functions.linear import linear  # noqa: E402
from ..functions.loss import (binary_cross_entropy, binary_cross_entropy_with_logits,  # noqa: E402
                              cross_entropy, dice_loss, focal_loss, huber_loss, l1_loss,
                              mse_loss, nll_loss, sigmoid_focal_loss, smooth_l1_loss)
from ..functions.normalization import (batch_norm, group_norm, instance_norm,  # noqa: E402
                                       layer_norm)


def upsample(input, size=None, scale_factor=None, mode="nearest", align_corners=None):
    """Deprecated alias of interpolate, kept for PyTorch compatibility."""
    return interpolate(input, size, scale_factor, mode, align_corners)


__all__ += ["dropout", "dropout1d", "dropout2d", "dropout3d", "interpolate", "upsample",
            "linear", "binary_cross_entropy", "binary_cross_entropy_with_logits",
            "cross_entropy", "dice_loss", "focal_loss", "huber_loss", "l1_loss", "mse_loss",
            "nll_loss", "sigmoid_focal_loss", "smooth_l1_loss", "batch_norm", "group_norm",
            "instance_norm", "layer_norm"]

# ----- convolution (functions/conv.py) --------------------------------------------------------
from ..functions.conv import (conv1d, conv2d, conv3d, conv_transpose1d,  # noqa: E402
                              conv_transpose2d, conv_transpose3d)

__all__ += ["conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
            "conv_transpose3d"]

# ----- pooling (functions/pooling.py) ---------------------------------------------------------
# PyTorch's names, argument order and defaults; input (N, C, *spatial) or unbatched
# (C, *spatial); with return_indices, (output, int64 indices into each (N, C) plane).
from ..functions import activation as _activation  # noqa: E402
from ..functions import pooling as _pooling  # noqa: E402


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling over (N, C, L) or (C, L); see torch.nn.functional.max_pool1d."""
    return _pooling.max_pool(input, 1, kernel_size, stride, padding, dilation, ceil_mode,
                             return_indices, "max_pool1d")


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling over (N, C, H, W) or (C, H, W); see torch.nn.functional.max_pool2d."""
    return _pooling.max_pool(input, 2, kernel_size, stride, padding, dilation, ceil_mode,
                             return_indices, "max_pool2d")


def max_pool3d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max pooling over (N, C, D, H, W) or (C, D, H, W); see torch.nn.functional.max_pool3d."""
    return _pooling.max_pool(input, 3, kernel_size, stride, padding, dilation, ceil_mode,
                             return_indices, "max_pool3d")


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """Average pooling over (N, C, L) or (C, L); see torch.nn.functional.avg_pool1d."""
    return _pooling.avg_pool(input, 1, kernel_size, stride, padding, ceil_mode,
                             count_include_pad, None, "avg_pool1d")


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average pooling over (N, C, H, W) or (C, H, W); see torch.nn.functional.avg_pool2d."""
    return _pooling.avg_pool(input, 2, kernel_size, stride, padding, ceil_mode,
                             count_include_pad, divisor_override, "avg_pool2d")


def avg_pool3d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Average pooling over (N, C, D, H, W) or (C, D, H, W); see torch.nn.functional.avg_pool3d."""
    return _pooling.avg_pool(input, 3, kernel_size, stride, padding, ceil_mode,
                             count_include_pad, divisor_override, "avg_pool3d")


def adaptive_avg_pool1d(input, output_size):
    """Average pooling to `output_size` (bins floor(i*in/out) .. ceil((i+1)*in/out))."""
    return _pooling.adaptive_avg_pool(input, 1, output_size, "adaptive_avg_pool1d")


def adaptive_avg_pool2d(input, output_size):
    """Average pooling to `output_size` (an int, or a pair whose None keeps a size)."""
    return _pooling.adaptive_avg_pool(input, 2, output_size, "adaptive_avg_pool2d")


def adaptive_avg_pool3d(input, output_size):
    """Average pooling to `output_size` (an int, or a triple whose None keeps a size)."""
    return _pooling.adaptive_avg_pool(input, 3, output_size, "adaptive_avg_pool3d")


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max pooling to `output_size`; with return_indices, also the int64 indices."""
    return _pooling.adaptive_max_pool(input, 1, output_size, return_indices,
                                      "adaptive_max_pool1d")


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max pooling to `output_size`; with return_indices, also the int64 indices."""
    return _pooling.adaptive_max_pool(input, 2, output_size, return_indices,
                                      "adaptive_max_pool2d")


def adaptive_max_pool3d(input, output_size, return_indices=False):
    """Max pooling to `output_size`; with return_indices, also the int64 indices."""
    return _pooling.adaptive_max_pool(input, 3, output_size, return_indices,
                                      "adaptive_max_pool3d")


def max_unpool1d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool1d: input written at `indices` of a zero tensor."""
    return _pooling.max_unpool(input, indices, 1, kernel_size, stride, padding, output_size,
                               "max_unpool1d")


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool2d: input written at `indices` of a zero tensor."""
    return _pooling.max_unpool(input, indices, 2, kernel_size, stride, padding, output_size,
                               "max_unpool2d")


def max_unpool3d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Inverse of max_pool3d: input written at `indices` of a zero tensor."""
    return _pooling.max_unpool(input, indices, 3, kernel_size, stride, padding, output_size,
                               "max_unpool3d")


# ----- activations (functions/activation.py; relu above) --------------------------------------

def leaky_relu(input, negative_slope=0.01, inplace=False):
    """x where x > 0, else negative_slope * x."""
    return _activation.leaky_relu(input, negative_slope, inplace)


def elu(input, alpha=1.0, inplace=False):
    """x where x > 0, else alpha * (exp(x) - 1)."""
    return _activation.elu(input, alpha, inplace)


def gelu(input, approximate="none"):
    """x * Phi(x) (approximate='none') or its tanh approximation (approximate='tanh')."""
    return _activation.gelu(input, approximate)


def sigmoid(input):
    """1 / (1 + exp(-x))."""
    return _activation.sigmoid(input)


def tanh(input):
    """Hyperbolic tangent."""
    return _activation.tanh(input)


def softmax(input, dim=None, _stacklevel=3, dtype=None):
    """exp(x) / sum(exp(x)) along dim (numerically stable); dtype= casts the input first."""
    return _activation.softmax(input, dim, dtype, log=False)


def log_softmax(input, dim=None, _stacklevel=3, dtype=None):
    """log(softmax(x)) along dim, computed as x - max - log(sum(exp(x - max)))."""
    return _activation.softmax(input, dim, dtype, log=True)


__all__ += ["max_pool1d", "max_pool2d", "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d",
            "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_avg_pool3d",
            "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
            "max_unpool1d", "max_unpool2d", "max_unpool3d", "leaky_relu", "elu", "gelu",
            "sigmoid", "tanh", "softmax", "log_softmax"]
