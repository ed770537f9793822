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
