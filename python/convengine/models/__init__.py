"""Small reference models built from convengine.nn, for examples, the CLI and tests.

    small_cnn:  conv blocks (conv 3x3 + batch norm + ReLU + max pool), global average
                pooling, dropout and a linear classifier; 2D or 3D.
    small_unet: a two-level U-Net for segmentation (2D or 3D).
    dncnn:      a residual denoiser (DnCNN-style: predicts the noise and subtracts it).

The zoo (one file per family):
    lenet.py:   LeNet-5 (lenet).
    resnet.py:  resnet18, resnet34 (torchvision's state_dict layout), resnet18_3d, resnet34_3d.
    unet.py:    UNet (2D/3D, configurable depth and width, transposed-conv or upsampling
                decoder): unet, unet3d.
    denoise.py: DnCNN and RED-CNN (dncnn, redcnn).
"""

from .. import nn

from .denoise import REDCNN, DnCNN, dncnn, redcnn
from .lenet import LeNet, lenet
from .resnet import BasicBlock, ResNet, resnet18, resnet18_3d, resnet34, resnet34_3d
from .unet import UNet, unet, unet3d

__all__ = ["small_cnn", "small_unet", "dncnn", "SmallUNet", "DnCNN", "MODELS",
           "REDCNN", "redcnn", "BasicBlock", "ResNet", "resnet18", "resnet34", "resnet18_3d",
           "resnet34_3d", "UNet", "unet", "unet3d", "LeNet", "lenet"]


def _layers(dims):
    return {2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d,
                nn.ConvTranspose2d),
            3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d,
                nn.ConvTranspose3d)}[dims]


def small_cnn(in_channels=1, num_classes=2, widths=(16, 32, 64), dims=2, dropout=0.3):
    """len(widths) blocks of conv-BN-ReLU-maxpool, then GAP, dropout and a linear head."""
    if dims not in (2, 3):
        raise ValueError(f"small_cnn: dims must be 2 or 3, got {dims!r}")
    conv, bn, pool, gap, _ = _layers(dims)
    layers, c = [], in_channels
    for w in widths:
        layers += [conv(c, w, 3, padding=1, bias=False), bn(w), nn.ReLU(), pool(2)]
        c = w
    layers += [gap(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)


def _double_conv(conv, bn, cin, cout):
    return nn.Sequential(conv(cin, cout, 3, padding=1, bias=False), bn(cout), nn.ReLU(),
                         conv(cout, cout, 3, padding=1, bias=False), bn(cout), nn.ReLU())


class SmallUNet(nn.Module):
    """Encoder (2 poolings), bottleneck, decoder with transposed convolutions and skip
    connections; input sizes divisible by 4."""

    def __init__(self, in_channels=1, num_classes=3, width=8, dims=2):
        super().__init__()
        conv, bn, pool, _, up = _layers(dims)
        self.enc1 = _double_conv(conv, bn, in_channels, width)
        self.enc2 = _double_conv(conv, bn, width, 2 * width)
        self.bottleneck = _double_conv(conv, bn, 2 * width, 4 * width)
        self.pool = pool(2)
        self.up2 = up(4 * width, 2 * width, 2, stride=2)
        self.dec2 = _double_conv(conv, bn, 4 * width, 2 * width)
        self.up1 = up(2 * width, width, 2, stride=2)
        self.dec1 = _double_conv(conv, bn, 2 * width, width)
        self.head = conv(width, num_classes, 1)

    def forward(self, x):
        from ..functional import cat

        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        b = self.bottleneck(self.pool(e2))
        d2 = self.dec2(cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(cat([self.up1(d2), e1], dim=1))
        return self.head(d1)


def small_unet(in_channels=1, num_classes=3, width=8, dims=2):
    return SmallUNet(in_channels, num_classes, width, dims)


# The CLI's registry: factory(channels, [num_classes,] dims=...) for its tasks.
MODELS = {"small_cnn": small_cnn, "small_unet": small_unet, "dncnn": dncnn}
