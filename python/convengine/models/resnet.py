"""ResNet-18 and ResNet-34 (He et al. 2016, BasicBlock) in 2D and 3D.

The 2D models use torchvision's module names, so their state_dict keys and shapes are
torchvision's exactly and its weights load unchanged:

    conv1, bn1, layer{1..4}.{i}.{conv1,bn1,conv2,bn2}, layer{2..4}.0.downsample.{0,1}, fc

The 3D variants (resnet18_3d, resnet34_3d) keep the same names and layout with Conv3d,
BatchNorm3d, MaxPool3d and AdaptiveAvgPool3d (a 7x7x7 stem, as an inflated 2D ResNet).

Shapes (2D, input (N, C, H, W)): stem conv 7x7/2 + max pool 3x3/2 -> H/4; layer2..4 halve
again -> H/32; global average pool -> (N, 512) -> fc -> (N, num_classes).
"""

from .. import nn
from ._checks import positive_int

__all__ = ["BasicBlock", "ResNet", "resnet18", "resnet34", "resnet18_3d", "resnet34_3d"]

_LAYERS = {2: (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AdaptiveAvgPool2d),
           3: (nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d, nn.AdaptiveAvgPool3d)}

_DEPTHS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}


class BasicBlock(nn.Module):
    """relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); conv 3x3, the first with `stride`;
    the shortcut is downsample = (conv 1x1/stride, bn) where the shape changes."""

    expansion = 1

    def __init__(self, inplanes, planes, stride=1, downsample=None, dims=2):
        super().__init__()
        conv, bn, _, _ = _LAYERS[dims]
        self.conv1 = conv(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = bn(planes)
        self.relu = nn.ReLU()
        self.conv2 = conv(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = bn(planes)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    """A BasicBlock ResNet with torchvision's layout.

    layers: blocks per stage (ResNet-18: (2, 2, 2, 2), ResNet-34: (3, 4, 6, 3)).
    num_classes: outputs of fc. in_channels: input channels (torchvision: 3).
    dims: 2 (images) or 3 (volumes). width: channels of the first stage (64 in torchvision);
    the stages have width, 2 width, 4 width, 8 width channels.
    zero_init_residual: start each block's last BN at gamma = 0 (each block the identity).
    """

    def __init__(self, layers, num_classes=1000, in_channels=3, dims=2, width=64,
                 zero_init_residual=False):
        super().__init__()
        op = type(self).__name__
        if dims not in (2, 3):
            raise ValueError(f"{op}: dims must be 2 or 3, got {dims!r}")
        if not isinstance(layers, (tuple, list)) or len(layers) != 4:
            raise ValueError(f"{op}: layers must be 4 block counts, got {layers!r}")
        layers = [positive_int(n, "layers", op) for n in layers]
        num_classes = positive_int(num_classes, "num_classes", op)
        in_channels = positive_int(in_channels, "in_channels", op)
        width = positive_int(width, "width", op)
        conv, bn, maxpool, gap = _LAYERS[dims]
        self.dims = dims
        self.inplanes = width
        self.conv1 = conv(in_channels, width, 7, 2, 3, bias=False)
        self.bn1 = bn(width)
        self.relu = nn.ReLU()
        self.maxpool = maxpool(3, 2, 1)
        self.layer1 = self._make_layer(width, layers[0], 1)
        self.layer2 = self._make_layer(2 * width, layers[1], 2)
        self.layer3 = self._make_layer(4 * width, layers[2], 2)
        self.layer4 = self._make_layer(8 * width, layers[3], 2)
        self.avgpool = gap(1)
        self.fc = nn.Linear(8 * width * BasicBlock.expansion, num_classes)
        # torchvision's initialisation: He normal (fan_out) for convolutions, BN at (1, 0)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Conv3d)):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.BatchNorm3d)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, BasicBlock):
                    nn.init.zeros_(m.bn2.weight)

    def _make_layer(self, planes, blocks, stride):
        conv, bn, _, _ = _LAYERS[self.dims]
        downsample = None
        if stride != 1 or self.inplanes != planes:
            downsample = nn.Sequential(conv(self.inplanes, planes, 1, stride, bias=False),
                                       bn(planes))
        layers = [BasicBlock(self.inplanes, planes, stride, downsample, self.dims)]
        self.inplanes = planes
        layers += [BasicBlock(planes, planes, 1, None, self.dims) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def features(self, x):
        """The last stage's feature maps (N, 8 width, *spatial / 32)."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))

    def forward(self, x):
        expected = self.dims + 2
        if x.ndim != expected:
            raise ValueError(f"{type(self).__name__}: input must be {expected}-D (N, C, "
                             f"*spatial) for dims={self.dims}, got shape {tuple(x.shape)}")
        return self.fc(self.avgpool(self.features(x)).flatten(1))


def resnet18(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-18 (2D), torchvision's state_dict layout."""
    return ResNet(_DEPTHS[18], num_classes, in_channels, dims=2, **kwargs)


def resnet34(num_classes=1000, in_channels=3, **kwargs):
    """ResNet-34 (2D), torchvision's state_dict layout."""
    return ResNet(_DEPTHS[34], num_classes, in_channels, dims=2, **kwargs)


def resnet18_3d(num_classes=2, in_channels=1, **kwargs):
    """ResNet-18 for volumes (N, C, D, H, W): Conv3d/BatchNorm3d, same key names."""
    return ResNet(_DEPTHS[18], num_classes, in_channels, dims=3, **kwargs)


def resnet34_3d(num_classes=2, in_channels=1, **kwargs):
    """ResNet-34 for volumes (N, C, D, H, W): Conv3d/BatchNorm3d, same key names."""
    return ResNet(_DEPTHS[34], num_classes, in_channels, dims=3, **kwargs)
