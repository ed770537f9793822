"""Model zoo: forward shapes, torchvision's state_dict layout for ResNet (checked against a
torch twin written with torchvision's module names: same keys and shapes, same outputs and
gradients once our weights are loaded), U-Net, DnCNN and RED-CNN."""

import numpy as np
import pytest

import convengine as ce
from convengine import models, nn

from conftest import assert_close

try:
    import torch
except ImportError:  # torch is optional: the parity tests skip
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


# ----- torch twins (torchvision's layout; torchvision itself is not needed) ---------------

def _torch_resnet(layers, num_classes, in_channels, dims=2, width=64):
    tnn = torch.nn
    conv = {2: tnn.Conv2d, 3: tnn.Conv3d}[dims]
    bn = {2: tnn.BatchNorm2d, 3: tnn.BatchNorm3d}[dims]

    class BasicBlock(tnn.Module):
        def __init__(self, cin, cout, stride):
            super().__init__()
            self.conv1 = conv(cin, cout, 3, stride, 1, bias=False)
            self.bn1 = bn(cout)
            self.relu = tnn.ReLU(inplace=True)
            self.conv2 = conv(cout, cout, 3, 1, 1, bias=False)
            self.bn2 = bn(cout)
            self.downsample = None
            if stride != 1 or cin != cout:
                self.downsample = tnn.Sequential(conv(cin, cout, 1, stride, bias=False), bn(cout))

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class ResNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = conv(in_channels, width, 7, 2, 3, bias=False)
            self.bn1 = bn(width)
            self.relu = tnn.ReLU(inplace=True)
            self.maxpool = {2: tnn.MaxPool2d, 3: tnn.MaxPool3d}[dims](3, 2, 1)
            cin = width
            for i, n in enumerate(layers):
                w = width * 2 ** i
                blocks = [BasicBlock(cin, w, 1 if i == 0 else 2)]
                blocks += [BasicBlock(w, w, 1) for _ in range(n - 1)]
                setattr(self, f"layer{i + 1}", tnn.Sequential(*blocks))
                cin = w
            self.avgpool = {2: tnn.AdaptiveAvgPool2d, 3: tnn.AdaptiveAvgPool3d}[dims](1)
            self.fc = tnn.Linear(cin, num_classes)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    return ResNet()


def _load_into_torch(ours, theirs):
    state = {k: torch.from_numpy(np.array(v.numpy() if hasattr(v, "numpy") else v))
             for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state, strict=True)


def _compare_forward_backward(ours, theirs, x, train):
    ours.train(train)
    theirs.train(train)
    xo = ce.tensor(x, requires_grad=True)
    xt = torch.tensor(x, requires_grad=True)
    out_o, out_t = ours(xo), theirs(xt)
    assert_close(out_o.numpy(), out_t.detach().numpy(), "model_vs_torch")
    w = np.random.default_rng(0).standard_normal(out_o.shape).astype(np.float32)
    (out_o * ce.tensor(w)).sum().backward()
    (out_t * torch.tensor(w)).sum().backward()
    assert_close(xo.grad.numpy(), xt.grad.numpy(), "model_vs_torch")
    grads_t = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.numpy(), grads_t[name].grad.numpy(), "model_vs_torch")
    if train:  # running statistics updated the same way
        buffers_t = dict(theirs.named_buffers())
        for name, b in ours.named_buffers():
            if b.dtype.kind == "f":
                assert_close(b.numpy(), buffers_t[name].numpy(), "model_vs_torch")
            else:  # num_batches_tracked
                np.testing.assert_array_equal(b.numpy(), buffers_t[name].numpy())


# ----- ResNet ------------------------------------------------------------------------------

# torchvision's resnet18 / resnet34 state_dicts: 122 / 218 entries (BN running stats and
# num_batches_tracked included).
@pytest.mark.parametrize("factory, n_keys", [(models.resnet18, 122), (models.resnet34, 218)])
def test_resnet_state_dict_layout(factory, n_keys):
    sd = factory(num_classes=7, in_channels=1).state_dict()
    assert len(sd) == n_keys
    assert tuple(sd["conv1.weight"].shape) == (64, 1, 7, 7)
    assert tuple(sd["fc.weight"].shape) == (7, 512)
    assert tuple(sd["layer2.0.downsample.0.weight"].shape) == (128, 64, 1, 1)
    assert "layer1.0.downsample.0.weight" not in sd
    assert tuple(sd["layer4.1.bn2.running_var"].shape) == (512,)


@needs_torch
@pytest.mark.parametrize("depth", [18, 34])
def test_resnet_keys_and_shapes_match_torch_twin(depth):
    layers = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}[depth]
    ours = {18: models.resnet18, 34: models.resnet34}[depth](num_classes=10, in_channels=3)
    theirs = _torch_resnet(layers, 10, 3)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)  # same keys, same order
    for key, value in theirs_sd.items():
        assert tuple(ours_sd[key].shape) == tuple(value.shape), key


@needs_torch
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_resnet18_matches_torch_twin(train):
    ce.manual_seed(0)
    ours = models.resnet18(num_classes=3, in_channels=1, width=8)
    theirs = _torch_resnet((2, 2, 2, 2), 3, 1, width=8)
    _load_into_torch(ours, theirs)
    if not train:  # non-trivial running statistics
        rng = np.random.default_rng(1)
        for (_, b), (_, tb) in zip(ours.named_buffers(), theirs.named_buffers()):
            if b.dtype.kind == "f":
                b.data[...] = rng.uniform(0.5, 1.5, b.shape).astype(b.dtype)
                tb.data.copy_(torch.from_numpy(b.data))
    x = np.random.default_rng(2).standard_normal((2, 1, 48, 40)).astype(np.float32)
    _compare_forward_backward(ours, theirs, x, train)


@needs_torch
def test_resnet18_3d_matches_torch_twin():
    ce.manual_seed(0)
    ours = models.resnet18_3d(num_classes=2, in_channels=1, width=4)
    theirs = _torch_resnet((2, 2, 2, 2), 2, 1, dims=3, width=4)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _load_into_torch(ours, theirs)
    x = np.random.default_rng(3).standard_normal((2, 1, 40, 36, 32)).astype(np.float32)
    _compare_forward_backward(ours, theirs, x, train=True)


@needs_torch
def test_resnet_loads_a_torch_state_dict_unchanged():
    """Weights trained elsewhere (torch tensors, torchvision's keys) load as they are."""
    theirs = _torch_resnet((2, 2, 2, 2), 4, 3, width=8).eval()
    ours = models.resnet18(num_classes=4, width=8)
    result = ours.load_state_dict(theirs.state_dict())
    assert not result.missing_keys and not result.unexpected_keys
    ours.eval()
    x = np.random.default_rng(6).standard_normal((1, 3, 40, 40)).astype(np.float32)
    with torch.no_grad():
        expected = theirs(torch.tensor(x)).numpy()
    assert_close(ours(ce.tensor(x)).numpy(), expected, "model_vs_torch")


def test_resnet_shapes_and_errors():
    m = models.resnet34_3d(num_classes=4, width=4)
    assert isinstance(m.layer3[0].conv1, nn.Conv3d)
    assert m(ce.randn(2, 1, 32, 32, 32)).shape == (2, 4)
    m = models.resnet18(num_classes=5, in_channels=2, width=4)
    assert m(ce.randn(2, 2, 33, 47)).shape == (2, 5)
    with pytest.raises(ValueError, match="input must be 4-D"):
        m(ce.randn(2, 2, 8, 8, 8))
    with pytest.raises(ValueError, match="num_classes"):
        models.resnet18(num_classes=0)
    with pytest.raises(TypeError, match="in_channels"):
        models.resnet18(in_channels=1.5)
    with pytest.raises(ValueError, match="dims"):
        models.ResNet((2, 2, 2, 2), dims=1)


def test_resnet_zero_init_residual_makes_blocks_identity():
    m = models.resnet18(num_classes=2, in_channels=1, width=4, zero_init_residual=True)
    assert all(float(np.abs(b.bn2.weight.numpy()).max()) == 0.0 for b in m.layer1)
    # The residual branch adds zero: a block without downsampling is relu(identity).
    x = ce.tensor(np.random.default_rng(0).standard_normal((2, 4, 8, 8)).astype(np.float32))
    with ce.no_grad():
        np.testing.assert_array_equal(m.layer1[0](x).numpy(), np.maximum(x.numpy(), 0))


def test_lenet():
    m = models.lenet(1, 10)
    assert [k for k in m.state_dict()] == ["conv1.weight", "conv1.bias", "conv2.weight",
                                           "conv2.bias", "fc1.weight", "fc1.bias", "fc2.weight",
                                           "fc2.bias", "fc3.weight", "fc3.bias"]
    assert m(ce.randn(2, 1, 28, 28)).shape == (2, 10)
    assert models.lenet(3, 2)(ce.randn(1, 3, 40, 36)).shape == (1, 2)
    with pytest.raises(ValueError, match="H, W >= 16"):
        m(ce.randn(1, 1, 8, 8))
    with pytest.raises(ValueError, match="num_classes"):
        models.lenet(num_classes=-1)


# ----- U-Net -------------------------------------------------------------------------------

@pytest.mark.parametrize("dims, up_mode, depth, size", [
    (2, "transpose", 3, (32, 24)), (2, "upsample", 2, (20, 12)),
    (3, "transpose", 2, (8, 12, 4)), (3, "upsample", 1, (6, 4, 10))])
def test_unet_shapes_and_backward(dims, up_mode, depth, size):
    ce.manual_seed(0)
    m = models.UNet(in_channels=2, num_classes=3, depth=depth, base_width=4, dims=dims,
                    up_mode=up_mode)
    assert len(m.encoders) == depth and len(m.decoders) == depth
    x = ce.randn(2, 2, *size, requires_grad=True)
    y = m(x)
    assert y.shape == (2, 3) + size
    y.sum().backward()
    assert x.grad.shape == x.shape
    assert all(p.grad is not None for p in m.parameters())


def test_unet_width_and_errors():
    m = models.unet(1, 2, depth=2, base_width=8)
    assert tuple(m.state_dict()["bottleneck.0.weight"].shape) == (32, 16, 3, 3)
    assert tuple(m.state_dict()["ups.0.weight"].shape) == (32, 16, 2, 2)
    assert tuple(models.unet(1, 2, depth=2, base_width=8, up_mode="upsample")
                 .state_dict()["ups.0.1.weight"].shape) == (16, 32, 3, 3)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*depth = 4"):
        m(ce.randn(1, 1, 10, 8))
    with pytest.raises(ValueError, match="up_mode"):
        models.UNet(up_mode="nearest")
    with pytest.raises(ValueError, match="depth"):
        models.UNet(depth=0)


# ----- denoisers ---------------------------------------------------------------------------

def test_dncnn_still_a_residual_denoiser():
    m = models.dncnn(channels=1, width=8, depth=4)
    assert list(m.state_dict())[0] == "body.0.weight"  # the key layout of earlier checkpoints
    for p in m.body[-1].parameters():
        p.data[...] = 0
    x = ce.randn(2, 1, 12, 12)
    np.testing.assert_array_equal(m(x).numpy(), x.numpy())  # f = 0: the identity
    assert models.dncnn(dims=3)(ce.randn(1, 1, 6, 6, 6)).shape == (1, 1, 6, 6, 6)


@pytest.mark.parametrize("dims, size", [(2, (23, 30)), (3, (12, 11, 13))])
def test_redcnn_shapes(dims, size):
    m = models.redcnn(channels=1, width=4, kernel_size=3 if dims == 3 else 5, dims=dims)
    x = ce.rand(2, 1, *size, requires_grad=True)
    y = m(x)
    assert y.shape == x.shape
    assert float(y.numpy().min()) >= 0  # the paper's final ReLU
    y.sum().backward()
    assert all(p.grad is not None for p in m.parameters())
    with pytest.raises(ValueError, match="spatial sizes must exceed"):
        m(ce.rand(1, 1, *(4,) * dims))


@needs_torch
def test_redcnn_matches_torch_twin():
    tnn = torch.nn

    class TorchRED(tnn.Module):  # the paper's reference implementation, layer for layer
        def __init__(self, w):
            super().__init__()
            self.conv1 = tnn.Conv2d(1, w, 5)
            for i in range(2, 6):
                setattr(self, f"conv{i}", tnn.Conv2d(w, w, 5))
            for i in range(1, 5):
                setattr(self, f"tconv{i}", tnn.ConvTranspose2d(w, w, 5))
            self.tconv5 = tnn.ConvTranspose2d(w, 1, 5)
            self.relu = tnn.ReLU()

        def forward(self, x):
            r1 = x
            out = self.relu(self.conv1(x))
            out = self.relu(self.conv2(out))
            r2 = out
            out = self.relu(self.conv3(out))
            out = self.relu(self.conv4(out))
            r3 = out
            out = self.relu(self.conv5(out))
            out = self.tconv1(out) + r3
            out = self.tconv2(self.relu(out))
            out = self.tconv3(self.relu(out)) + r2
            out = self.tconv4(self.relu(out))
            out = self.tconv5(self.relu(out)) + r1
            return self.relu(out)

    ce.manual_seed(0)
    ours, theirs = models.redcnn(width=6), TorchRED(6)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    _load_into_torch(ours, theirs)
    x = np.random.default_rng(4).uniform(0, 1, (2, 1, 26, 25)).astype(np.float32)
    _compare_forward_backward(ours, theirs, x, train=True)


def test_denoiser_errors():
    with pytest.raises(ValueError, match="REDCNN: dims"):
        models.redcnn(dims=4)
    with pytest.raises(TypeError, match="REDCNN: width"):
        models.redcnn(width="8")
    with pytest.raises(ValueError, match="DnCNN: depth"):
        models.dncnn(depth=1)
