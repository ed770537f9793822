"""LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, the classic layer names.

    conv1 (in_channels -> 6, 5x5, padding 2) - ReLU - max pool 2
    conv2 (6 -> 16, 5x5) - ReLU - max pool 2 - adaptive average pool to 5x5
    fc1 (400 -> 120) - ReLU - fc2 (120 -> 84) - ReLU - fc3 (84 -> num_classes)

For 28x28 inputs (MNIST) the feature maps are 28 -> 14 -> 10 -> 5, as in the paper (32x32
without padding); the adaptive pool lets other sizes (>= 16) through unchanged in layout.
"""

from .. import nn
from ._checks import positive_int

__all__ = ["LeNet", "lenet"]


class LeNet(nn.Module):
    def __init__(self, in_channels=1, num_classes=10):
        super().__init__()
        positive_int(in_channels, "in_channels", "LeNet")
        positive_int(num_classes, "num_classes", "LeNet")
        self.conv1 = nn.Conv2d(in_channels, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool = nn.MaxPool2d(2)
        self.avgpool = nn.AdaptiveAvgPool2d((5, 5))
        self.relu = nn.ReLU()
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, num_classes)

    def forward(self, x):
        if x.ndim != 4 or min(x.shape[2:]) < 16:
            raise ValueError(f"LeNet: input must be (N, C, H, W) with H, W >= 16, got shape "
                             f"{tuple(x.shape)}")
        x = self.pool(self.relu(self.conv1(x)))
        x = self.avgpool(self.pool(self.relu(self.conv2(x))))   # (N, 16, 5, 5)
        x = self.relu(self.fc1(x.flatten(1)))
        return self.fc3(self.relu(self.fc2(x)))


def lenet(in_channels=1, num_classes=10):
    return LeNet(in_channels, num_classes)
