"""Denoisers: DnCNN (Zhang et al. 2017) and RED-CNN (Chen et al. 2017), 2D or 3D.

Both are residual: DnCNN predicts the noise and subtracts it from the input; RED-CNN is a
convolutional encoder (5 convolutions without padding, each shrinking the image by
kernel_size - 1) mirrored by a deconvolutional decoder, with three shortcuts that add the
input, the 2nd and the 4th encoder outputs back onto the decoder (outputs match the input size).
"""

from .. import nn
from ._checks import positive_int

__all__ = ["DnCNN", "dncnn", "REDCNN", "redcnn"]

_LAYERS = {2: (nn.Conv2d, nn.BatchNorm2d, nn.ConvTranspose2d),
           3: (nn.Conv3d, nn.BatchNorm3d, nn.ConvTranspose3d)}


def _check(op, dims, **ints):
    if dims not in (2, 3):
        raise ValueError(f"{op}: dims must be 2 or 3, got {dims!r}")
    for name, value in ints.items():
        positive_int(value, name, op)


class DnCNN(nn.Module):
    """Residual denoiser: x - f(x), f = conv-ReLU, (conv-BN-ReLU) x (depth - 2), conv."""

    def __init__(self, channels=1, width=16, depth=5, dims=2):
        super().__init__()
        _check("DnCNN", dims, channels=channels, width=width, depth=depth)
        if depth < 2:
            raise ValueError(f"DnCNN: depth must be >= 2, got {depth}")
        conv, bn, _ = _LAYERS[dims]
        layers = [conv(channels, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [conv(width, width, 3, padding=1, bias=False), bn(width), nn.ReLU()]
        layers.append(conv(width, channels, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, x):
        return x - self.body(x)


def dncnn(channels=1, width=16, depth=5, dims=2):
    return DnCNN(channels, width, depth, dims)


class REDCNN(nn.Module):
    """RED-CNN: conv1..conv5 (kernel_size, no padding, ReLU) then tconv1..tconv5
    (transposed, same kernel), shortcuts as in the paper's implementation:

        r1 = x;  e2 = relu(conv2(relu(conv1(x))));  e4 = relu(conv4(relu(conv3(e2))))
        d = tconv1(relu(conv5(e4))) + e4
        d = tconv3(relu(tconv2(relu(d)))) + e2
        y = tconv5(relu(tconv4(relu(d)))) + r1;  y = relu(y) if out_relu

    Images must be larger than 5 (kernel_size - 1) pixels along each axis.
    out_relu: the paper's final ReLU (intensities >= 0, e.g. normalised CT); turn it off for
    signed data.
    """

    def __init__(self, channels=1, width=96, kernel_size=5, dims=2, out_relu=True):
        super().__init__()
        _check("REDCNN", dims, channels=channels, width=width, kernel_size=kernel_size)
        conv, _, convt = _LAYERS[dims]
        self.dims, self.kernel_size, self.out_relu = dims, kernel_size, bool(out_relu)
        self.conv1 = conv(channels, width, kernel_size)
        for i in range(2, 6):
            setattr(self, f"conv{i}", conv(width, width, kernel_size))
        for i in range(1, 5):
            setattr(self, f"tconv{i}", convt(width, width, kernel_size))
        self.tconv5 = convt(width, channels, kernel_size)
        self.relu = nn.ReLU()

    def forward(self, x):
        expected = self.dims + 2
        if x.ndim != expected:
            raise ValueError(f"REDCNN: input must be {expected}-D (N, C, *spatial), got shape "
                             f"{tuple(x.shape)}")
        shrink = 5 * (self.kernel_size - 1)
        if any(s <= shrink for s in x.shape[2:]):
            raise ValueError(f"REDCNN: spatial sizes must exceed {shrink} (5 x (kernel_size - "
                             f"1)), got {tuple(x.shape[2:])}")
        relu = self.relu
        residual1 = x
        out = relu(self.conv2(relu(self.conv1(x))))
        residual2 = out
        out = relu(self.conv4(relu(self.conv3(out))))
        residual3 = out
        out = self.tconv1(relu(self.conv5(out))) + residual3
        out = self.tconv3(relu(self.tconv2(relu(out)))) + residual2
        out = self.tconv5(relu(self.tconv4(relu(out)))) + residual1
        return relu(out) if self.out_relu else out


def redcnn(channels=1, width=96, kernel_size=5, dims=2, out_relu=True):
    return REDCNN(channels, width, kernel_size, dims, out_relu)
