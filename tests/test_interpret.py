"""convengine.interpret: Grad-CAM and Grad-CAM++ localise phantom lesions, fail the Adebayo
sanity check's randomisation the way they should (the maps change), equal torch-computed maps
on the same weights, in 2D and 3D; overlays are written as PNG."""

import numpy as np
import pytest

import convengine as ce
from convengine import nn, optim
from convengine.data.datasets.phantom import PhantomDataset
from convengine.interpret import GradCAM, GradCAMPlusPlus, overlay

from conftest import assert_close

try:
    import torch
except ImportError:
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
CONTRAST = (0.3, 0.6)


def _cam_net(fw, dims=2):
    """conv-ReLU x2, max pool, conv-ReLU, 1x1 class scores, global max pool (written once for
    convengine and torch: same keys)."""
    tnn = fw.nn
    conv = tnn.Conv2d if dims == 2 else tnn.Conv3d
    pool = tnn.MaxPool2d if dims == 2 else tnn.MaxPool3d
    gmp = tnn.AdaptiveMaxPool2d if dims == 2 else tnn.AdaptiveMaxPool3d
    return tnn.Sequential(conv(1, 8, 3, padding=1), tnn.ReLU(), conv(8, 16, 3, padding=1),
                          tnn.ReLU(), pool(2), conv(16, 16, 3, padding=1), tnn.ReLU(),
                          conv(16, 2, 1), gmp(1), tnn.Flatten())


@pytest.fixture(scope="module")
def trained():
    """A lesion classifier trained for a few seconds (seeded) and held-out phantoms."""
    ce.manual_seed(0)
    train = PhantomDataset(n=256, size=32, seed=1, contrast=CONTRAST)
    x = np.stack([train[i][0] for i in range(len(train))])
    y = train.labels
    model = _cam_net(ce)
    opt = optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.CrossEntropyLoss()
    rng = np.random.default_rng(0)
    for _ in range(5):
        perm = rng.permutation(len(x))
        for i in range(0, len(x), 32):
            idx = perm[i:i + 32]
            opt.zero_grad()
            loss_fn(model(ce.tensor(x[idx])), ce.tensor(y[idx])).backward()
            opt.step()
    model.eval()
    test = PhantomDataset(n=100, size=32, seed=2, contrast=CONTRAST)
    xt = np.stack([test[i][0] for i in range(len(test))])
    masks = np.stack([test.generate(i)[1] for i in range(len(test))])
    return model, xt, test.labels, masks


def _positives(model, x, labels):
    with ce.no_grad():
        pred = model(ce.tensor(x)).numpy().argmax(1)
    return np.where((pred == 1) & (labels == 1))[0]


@pytest.mark.parametrize("method", [GradCAM, GradCAMPlusPlus])
def test_peak_inside_lesion(trained, method):
    model, x, labels, masks = trained
    sel = _positives(model, x, labels)
    assert len(sel) >= 20  # the classifier learned something
    maps = method(model, model[6])(x[sel])  # the last convolution's ReLU; predicted class
    assert maps.shape == (len(sel), 32, 32)
    assert maps.min() >= 0 and np.allclose(maps.reshape(len(sel), -1).max(1), 1)
    peaks = [np.unravel_index(m.argmax(), m.shape) for m in maps]
    hits = np.mean([masks[j][p] == 2 for j, p in zip(sel, peaks)])
    assert hits >= 0.8, f"{method.name}: peak inside the lesion for {hits:.0%} of positives"


def test_maps_change_when_weights_are_randomised(trained):
    """Adebayo et al. 2018: a map that survives weight randomisation explains nothing."""
    model, x, labels, _ = trained
    sel = _positives(model, x, labels)[:16]
    before = GradCAM(model, model[6])(x[sel], target=1)
    state = {k: v.numpy().copy() for k, v in model.state_dict().items()}
    try:
        ce.manual_seed(123)
        for p in model.parameters():
            p.data[...] = np.random.default_rng(7).standard_normal(p.shape) * p.data.std()
        after = GradCAM(model, model[6])(x[sel], target=1)
    finally:
        model.load_state_dict(state)
    # Pearson correlation per image; a constant (all-zero) randomised map correlates 0
    corr = [np.corrcoef(a.ravel(), b.ravel())[0, 1] if b.std() > 0 else 0.0
            for a, b in zip(before, after)]
    assert np.mean(corr) < 0.5
    again = GradCAM(model, model[6])(x[sel], target=1)  # weights restored: same maps
    np.testing.assert_array_equal(again, before)


def _torch_cam(model, layer, x, target, plus_plus):
    store = {}

    def hook(module, inputs, output):
        output.retain_grad()
        store["A"] = output

    handle = layer.register_forward_hook(hook)
    out = model(torch.tensor(x))
    handle.remove()
    out[torch.arange(len(x)), torch.tensor(target)].sum().backward()
    a, g = store["A"].double(), store["A"].grad.double()
    dims = tuple(range(2, a.ndim))
    if plus_plus:
        g2, g3 = g ** 2, g ** 3
        denominator = 2 * g2 + a.sum(dims, keepdim=True) * g3
        alpha = torch.where(g != 0, g2 / torch.where(denominator != 0, denominator,
                                                     torch.ones_like(denominator)), 0 * g)
        w = (alpha * torch.relu(g)).sum(dims, keepdim=True)
    else:
        w = g.mean(dims, keepdim=True)
    cam = torch.relu((w * a).sum(1, keepdim=True)).float()
    mode = "bilinear" if cam.ndim == 4 else "trilinear"
    cam = torch.nn.functional.interpolate(cam, size=x.shape[2:], mode=mode,
                                          align_corners=False)[:, 0]
    flat = cam.reshape(len(x), -1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    return ((flat - lo) / (hi - lo)).reshape(cam.shape).detach().numpy()


@needs_torch
@pytest.mark.parametrize("dims", [2, 3])
@pytest.mark.parametrize("method", [GradCAM, GradCAMPlusPlus])
def test_equals_torch_computed_cam(dims, method):
    ce.manual_seed(3)
    ours = _cam_net(ce, dims)
    theirs = _cam_net(torch, dims)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    size = (16, 12) if dims == 2 else (8, 10, 6)
    x = np.random.default_rng(5).standard_normal((3, 1) + size).astype(np.float32)
    target = [0, 1, 1]
    mine = method(ours, ours[3])(x, target=target)
    reference = _torch_cam(theirs, theirs[3], x, target, method is GradCAMPlusPlus)
    assert mine.shape == (3,) + size
    assert_close(mine, reference, "cam_vs_torch")


def test_cam_leaves_model_untouched_and_layer_by_name():
    ce.manual_seed(0)
    model = _cam_net(ce)
    model.train()
    x = ce.randn(2, 1, 8, 8, requires_grad=True)
    cam = GradCAM(model, "5")
    maps = cam(x, target=np.array([1, 0]), upsample=False, normalize=False)
    assert maps.shape == (2, 4, 4) and maps.min() >= 0
    assert cam.activations.shape == (2, 16, 4, 4) == cam.gradients.shape
    assert cam.targets.tolist() == [1, 0]
    assert model.training and all(m.training for m in model.modules())
    assert all(p.grad is None and p.requires_grad for p in model.parameters())
    assert x.grad is None
    assert not model[5]._forward_hooks  # the hook is gone


def test_cam_errors():
    model = _cam_net(ce)
    cam = GradCAM(model, model[5])
    x = ce.randn(1, 1, 8, 8)
    with pytest.raises(TypeError, match="GradCAM: model"):
        GradCAM(object(), model[5])
    with pytest.raises(ValueError, match="target_layer 'nope'"):
        GradCAM(model, "nope")
    with pytest.raises(ValueError, match="not a submodule"):
        GradCAM(model, nn.ReLU())
    with pytest.raises(TypeError, match="target_layer must be a Module"):
        GradCAM(model, 3)
    with pytest.raises(ValueError, match="target must lie in \\[0, 2\\)"):
        cam(x, target=2)
    with pytest.raises(TypeError, match="target must be None, an int or 1 ints"):
        cam(x, target=[0, 1])
    with pytest.raises(TypeError, match="GradCAMPlusPlus: input"):
        GradCAMPlusPlus(model, model[5])([1.0])
    with pytest.raises(ValueError, match="input must be \\(N, C, H, W\\)"):
        cam(ce.randn(1, 8, 8))
    with pytest.raises(ValueError, match="pick a convolutional layer"):
        GradCAM(model, model[9])(x)


def test_overlay_png(tmp_path):
    pytest.importorskip("matplotlib")
    image = np.random.default_rng(0).random((1, 16, 16)).astype(np.float32)
    cam = np.zeros((16, 16), np.float32)
    cam[4:8, 4:8] = 1
    path = overlay(image, cam, str(tmp_path / "cam.png"), title="lesion")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    volume, cam3 = np.random.default_rng(1).random((6, 8, 8)), np.random.default_rng(2).random(
        (6, 8, 8))
    assert overlay(volume, cam3, tmp_path / "vol.png", slice_index=2) == tmp_path / "vol.png"
    assert (tmp_path / "vol.png").stat().st_size > 0
    with pytest.raises(ValueError, match="spatial shape"):
        overlay(image, cam[:8], tmp_path / "x.png")
    with pytest.raises(ValueError, match="slice_index"):
        overlay(volume, cam3, tmp_path / "x.png", slice_index=9)
