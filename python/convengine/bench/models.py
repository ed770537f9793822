"""The end-to-end benchmark models, written once for both frameworks.

convengine mirrors PyTorch's API, so each builder takes the framework's top-level module (`fw`:
convengine or torch) and builds the same network from `fw.nn`; the torch copy then loads
convengine's state_dict unchanged (same keys, same shapes). No torchvision is needed.
"""


def mnist_cnn(fw):
    """1x28x28 -> 10 classes: two conv-ReLU-pool blocks (the mnist_c1/c2 shapes), two linear."""
    nn = fw.nn
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10))


def resnet18(fw, num_classes=1000):
    """ResNet-18 with torchvision's layer names (conv1, bn1, layer1..4, fc)."""
    nn = fw.nn

    class BasicBlock(nn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(cout)
            self.relu = nn.ReLU()
            self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                                nn.BatchNorm2d(cout))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU()
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            widths, cin = (64, 128, 256, 512), 64
            for i, width in enumerate(widths):
                stride = 1 if i == 0 else 2
                setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, width, stride),
                                                             BasicBlock(width, width, 1)))
                cin = width
            self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(512, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(self.avgpool(x).flatten(1))

    return ResNet()


def unet2d(fw, in_channels=1, num_classes=2, width=32):
    """A three-level U-Net (the unet_ct_in / unet_ct_mid shapes at 256x256 input)."""
    nn = fw.nn

    def double_conv(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                             nn.ReLU(), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU())

    class UNet(nn.Module):
        def __init__(self):
            super().__init__()
            w = width
            self.enc1, self.enc2 = double_conv(in_channels, w), double_conv(w, 2 * w)
            self.bottleneck = double_conv(2 * w, 4 * w)
            self.pool = nn.MaxPool2d(2)
            self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, stride=2)
            self.dec2 = double_conv(4 * w, 2 * w)
            self.up1 = nn.ConvTranspose2d(2 * w, w, 2, stride=2)
            self.dec1 = double_conv(2 * w, w)
            self.head = nn.Conv2d(w, num_classes, 1)

        def forward(self, x):
            e1 = self.enc1(x)
            e2 = self.enc2(self.pool(e1))
            b = self.bottleneck(self.pool(e2))
            d2 = self.dec2(fw.cat([self.up2(b), e2], dim=1))
            d1 = self.dec1(fw.cat([self.up1(d2), e1], dim=1))
            return self.head(d1)

    return UNet()


def conv3d_block(fw, cin=16, cout=32):
    """Two conv3d-BN-ReLU layers, as in a 3D CT segmentation encoder (the conv3d_ct shape)."""
    nn = fw.nn
    return nn.Sequential(nn.Conv3d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm3d(cout),
                         nn.ReLU(), nn.Conv3d(cout, cout, 3, padding=1, bias=False),
                         nn.BatchNorm3d(cout), nn.ReLU())
