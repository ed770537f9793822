"""convengine.inference.sliding_window: tiles blended with Gaussian (or constant) weights give
the identity exactly, a fully convolutional model's full-image output wherever every tile
covering a pixel sees its whole receptive field, odd sizes, tiles larger than the image, and a
predictor that never sees more than sw_batch_size tiles."""

import numpy as np
import pytest

import convengine as ce
from convengine import nn
from convengine.inference import gaussian_weights, sliding_window, tile_starts

from conftest import assert_close


def _fcn(dims, seed=0):
    ce.manual_seed(seed)
    conv = nn.Conv2d if dims == 2 else nn.Conv3d
    return nn.Sequential(conv(2, 4, 3, padding=1), nn.ReLU(), conv(4, 3, 3, padding=1)).eval()


def _safe(size, roi, overlap, radius):
    """Per axis: positions where every covering tile holds the receptive field (radius) unless
    the tile's edge is the image's own edge (zero padding there, as in the full forward)."""
    ok = np.ones(size, bool)
    for s in tile_starts(size, roi, overlap):
        for p in range(s, min(s + roi, size)):
            if (p - s < radius and s > 0) or (s + roi - 1 - p < radius and s + roi < size):
                ok[p] = False
    return ok


@pytest.mark.parametrize("mode", ["gaussian", "constant"])
@pytest.mark.parametrize("shape, roi", [((2, 3, 37, 29), 16), ((1, 2, 11, 13, 9), (6, 8, 5)),
                                        ((1, 1, 5, 7), 9)])
def test_identity_is_reproduced(shape, roi, mode):
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    seen = []

    def identity(tiles):
        seen.append(tiles.shape[0])
        return tiles

    out = sliding_window(identity, x, roi, overlap=0.4, sw_batch_size=3, mode=mode)
    assert out.shape == x.shape and isinstance(out, np.ndarray)
    assert_close(out, x, "exact_ops")
    assert max(seen) <= 3


@pytest.mark.parametrize("dims, shape, roi, overlap", [
    (2, (2, 2, 37, 29), (16, 12), 0.5), (2, (1, 2, 33, 40), 17, 0.25),
    (3, (1, 2, 15, 13, 11), (8, 8, 6), 0.5)])
def test_matches_full_forward_away_from_tile_borders(dims, shape, roi, overlap):
    model = _fcn(dims)
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    with ce.no_grad():
        full = model(ce.tensor(x)).numpy()
    out = sliding_window(model, ce.tensor(x), roi, overlap=overlap, sw_batch_size=4)
    assert isinstance(out, ce.Tensor) and out.shape == full.shape
    roi = (roi,) * dims if isinstance(roi, int) else roi
    masks = [_safe(s, r, overlap, radius=2) for s, r in zip(shape[2:], roi)]
    safe = np.ix_(*masks)
    assert all(m.sum() > 0 for m in masks)
    assert_close(out.numpy()[(slice(None), slice(None)) + safe],
                 full[(slice(None), slice(None)) + safe], "conv_vs_reference")
    # elsewhere the blend stays close: the Gaussian weighs the tiles' centres most
    assert np.abs(out.numpy() - full).max() < 0.5 * np.abs(full).max()


def test_tile_larger_than_image_is_one_forward():
    ce.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1)).eval()  # zero padding = cval
    x = np.random.default_rng(2).standard_normal((2, 2, 7, 5)).astype(np.float32)
    with ce.no_grad():
        full = model(ce.tensor(x)).numpy()
    out = sliding_window(model, x, (16, 16), sw_batch_size=1)
    assert_close(out, full, "conv_vs_reference")


def test_tiles_cover_everything_and_weights():
    assert tile_starts(37, 16, 0.5) == [0, 8, 16, 21]
    assert tile_starts(10, 16, 0.5) == [0]
    assert tile_starts(16, 16, 0.0) == [0]
    assert tile_starts(5, 1, 0.9) == [0, 1, 2, 3, 4]
    w = gaussian_weights((5, 4))
    assert w.shape == (5, 4) and w.min() > 0 and np.isclose(w.max(), 1)
    np.testing.assert_allclose(w, w[::-1, ::-1])
    with pytest.raises(ValueError, match="tile_starts: overlap"):
        tile_starts(10, 4, -0.1)
    with pytest.raises(ValueError, match="tile_starts: roi must be an int >= 1"):
        tile_starts(10, 0, 0.5)
    with pytest.raises(ValueError, match="gaussian_weights: sigma_scale"):
        gaussian_weights((4, 4), sigma_scale=0)


def test_errors():
    x = np.zeros((1, 1, 8, 8), np.float32)
    with pytest.raises(TypeError, match="predictor must be callable"):
        sliding_window(None, x, 4)
    with pytest.raises(TypeError, match="input must be a Tensor or numpy array"):
        sliding_window(lambda t: t, [[1.0]], 4)
    with pytest.raises(TypeError, match="input must be floating point"):
        sliding_window(lambda t: t, x.astype(np.int32), 4)
    with pytest.raises(ValueError, match="input must be \\(N, C, H, W\\)"):
        sliding_window(lambda t: t, x[0], 4)
    with pytest.raises(ValueError, match="roi_size must be an int or 2 sizes"):
        sliding_window(lambda t: t, x, (4, 4, 4))
    with pytest.raises(ValueError, match="roi_size must be an int >= 1"):
        sliding_window(lambda t: t, x, (0, 4))
    with pytest.raises(ValueError, match="overlap must be a number in \\[0, 1\\)"):
        sliding_window(lambda t: t, x, 4, overlap=1.0)
    with pytest.raises(ValueError, match="sw_batch_size"):
        sliding_window(lambda t: t, x, 4, sw_batch_size=0)
    with pytest.raises(ValueError, match="mode must be one of"):
        sliding_window(lambda t: t, x, 4, mode="linear")
    with pytest.raises(ValueError, match="predictor must map"):
        sliding_window(lambda t: t.numpy()[:, :, :2], x, 4)
