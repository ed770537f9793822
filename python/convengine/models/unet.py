"""U-Net (Ronneberger et al. 2015) in 2D and 3D with configurable depth and width.

    UNet(in_channels=1, num_classes=2, depth=4, base_width=32, dims=2, up_mode="transpose")

Encoder: depth+1 levels of double convolution (conv 3x3 - BN - ReLU, twice), a 2x max pool
between levels; level l has base_width * 2**l channels. Decoder: at each level an upsampling
step halves the channels, the skip connection is concatenated (channels add up to 2x) and a
double convolution halves them again; a 1x1 convolution gives the class logits.
up_mode: "transpose" (ConvTranspose 2x2, stride 2) or "upsample" ((bi/tri)linear 2x
upsampling followed by a 3x3 convolution). Spatial sizes must be divisible by 2**depth.

State dict keys: encoders.{l}.*, bottleneck.*, ups.{l}.*, decoders.{l}.*, head.*.
"""

from .. import nn
from ..functional import cat
from ._checks import positive_int

__all__ = ["UNet", "unet", "unet3d"]

_LAYERS = {2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.ConvTranspose2d, "bilinear"),
           3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.ConvTranspose3d, "trilinear")}


def _double_conv(dims, cin, cout, batch_norm):
    conv, bn = _LAYERS[dims][0], _LAYERS[dims][1]
    layers = []
    for c in (cin, cout):
        layers.append(conv(c, cout, 3, padding=1, bias=not batch_norm))
        if batch_norm:
            layers.append(bn(cout))
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """See the module docstring. batch_norm=False uses biased convolutions instead of BN."""

    def __init__(self, in_channels=1, num_classes=2, depth=4, base_width=32, dims=2,
                 up_mode="transpose", batch_norm=True):
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"UNet: dims must be 2 or 3, got {dims!r}")
        if up_mode not in ("transpose", "upsample"):
            raise ValueError(f"UNet: up_mode must be 'transpose' or 'upsample', got {up_mode!r}")
        in_channels = positive_int(in_channels, "in_channels", "UNet")
        num_classes = positive_int(num_classes, "num_classes", "UNet")
        depth = positive_int(depth, "depth", "UNet")
        base_width = positive_int(base_width, "base_width", "UNet")
        conv, _, pool, convt, linear_mode = _LAYERS[dims]
        self.dims, self.depth, self.up_mode = dims, depth, up_mode
        widths = [base_width * 2 ** level for level in range(depth + 1)]
        self.encoders = nn.ModuleList()
        c = in_channels
        for w in widths[:-1]:
            self.encoders.append(_double_conv(dims, c, w, batch_norm))
            c = w
        self.pool = pool(2)
        self.bottleneck = _double_conv(dims, widths[-2], widths[-1], batch_norm)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for level in reversed(range(depth)):          # deepest first
            cin, cout = widths[level + 1], widths[level]
            if up_mode == "transpose":
                self.ups.append(convt(cin, cout, 2, stride=2))
            else:
                self.ups.append(nn.Sequential(
                    nn.Upsample(scale_factor=2, mode=linear_mode, align_corners=False),
                    conv(cin, cout, 3, padding=1)))
            self.decoders.append(_double_conv(dims, 2 * cout, cout, batch_norm))
        self.head = conv(widths[0], num_classes, 1)

    def forward(self, x):
        expected = self.dims + 2
        if x.ndim != expected:
            raise ValueError(f"UNet: input must be {expected}-D (N, C, *spatial), got shape "
                             f"{tuple(x.shape)}")
        factor = 2 ** self.depth
        if any(s % factor for s in x.shape[2:]):
            raise ValueError(f"UNet: spatial sizes must be divisible by 2**depth = {factor}, "
                             f"got {tuple(x.shape[2:])}")
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottleneck(x)
        for up, decoder, skip in zip(self.ups, self.decoders, reversed(skips)):
            x = decoder(cat([up(x), skip], dim=1))  # (N, 2 c, *S) = up (N, c) ++ skip (N, c)
        return self.head(x)


def unet(in_channels=1, num_classes=2, depth=4, base_width=32, up_mode="transpose",
         batch_norm=True):
    """2D U-Net."""
    return UNet(in_channels, num_classes, depth, base_width, 2, up_mode, batch_norm)


def unet3d(in_channels=1, num_classes=2, depth=3, base_width=16, up_mode="transpose",
           batch_norm=True):
    """3D U-Net for volumes (N, C, D, H, W)."""
    return UNet(in_channels, num_classes, depth, base_width, 3, up_mode, batch_norm)
