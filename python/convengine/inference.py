"""Sliding-window inference for images and volumes larger than fit through a model at once.

    model.eval()
    out = sliding_window(model, volume, roi_size=(64, 64, 64), overlap=0.5, sw_batch_size=4)

The input (N, C, *spatial) is cut into overlapping tiles of roi_size (2 or 3 spatial axes);
sw_batch_size tiles at a time go through the predictor (so the model's activations are
bounded by the tile batch, not by the volume), and the tile predictions are blended into the
output with weights: a Gaussian centred on the tile (mode="gaussian": the tile's centre, where
the prediction has the most context, counts most) or constant (a plain average of the
overlapping tiles). The output has the input's spatial size and the predictor's channels.

Tile positions along an axis of length L with tile length R and overlap o: step =
max(1, floor(R (1 - o))), starts 0, step, 2 step, ... and a last tile flush with the end
(L - R), so every voxel is covered. A tile longer than the image is the whole axis: the input
is padded to R with `cval` and the output cropped back.
"""

import math
import numbers

import numpy as np

from .autograd import no_grad
from .tensor import Tensor

__all__ = ["sliding_window", "tile_starts", "gaussian_weights"]

_MODES = ("gaussian", "constant")


def tile_starts(size, roi, overlap):
    """Start offsets of the tiles along one axis (see the module docstring)."""
    size, roi = _check_int(size, "size", op="tile_starts"), _check_int(roi, "roi", op="tile_starts")
    overlap = _check_overlap(overlap, "tile_starts")
    if roi >= size:
        return [0]
    step = max(1, int(math.floor(roi * (1.0 - overlap))))
    n = int(math.ceil((size - roi) / step)) + 1
    return sorted({min(i * step, size - roi) for i in range(n)})


def gaussian_weights(roi_size, sigma_scale=0.125, dtype=np.float32):
    """Separable Gaussian importance map of shape roi_size: sigma = sigma_scale x the tile
    length per axis, peak 1 at the centre, floored at a small positive value so that every
    voxel of a tile has weight."""
    if isinstance(roi_size, numbers.Integral):
        roi_size = (roi_size,)
    roi_size = tuple(_check_int(r, "roi_size", op="gaussian_weights") for r in roi_size)
    if isinstance(sigma_scale, bool) or not isinstance(sigma_scale, numbers.Real) or \
            not sigma_scale > 0:
        raise ValueError(f"gaussian_weights: sigma_scale must be > 0, got {sigma_scale!r}")
    weights = np.ones((), dtype=np.float64)
    for r in roi_size:
        centre = (r - 1) / 2.0
        sigma = max(sigma_scale * r, 1e-6)
        axis = np.exp(-0.5 * ((np.arange(r) - centre) / sigma) ** 2)
        weights = np.multiply.outer(weights, axis)
    weights /= weights.max()
    return np.maximum(weights, 1e-3).astype(dtype)


def _check_int(value, name, minimum=1, op="sliding_window"):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{op}: {name} must be an int >= {minimum}, got {value!r}")
    return int(value)


def _check_overlap(overlap, op):
    if isinstance(overlap, bool) or not isinstance(overlap, numbers.Real) or \
            not 0 <= overlap < 1:
        raise ValueError(f"{op}: overlap must be a number in [0, 1), got {overlap!r}")
    return float(overlap)


def sliding_window(predictor, input, roi_size, overlap=0.25, sw_batch_size=4, mode="gaussian",
                   sigma_scale=0.125, cval=0.0):
    """Runs `predictor` over overlapping tiles of `input` and blends the tile predictions.

    predictor: a callable (a model in eval mode) mapping (B, C, *roi_size) to
        (B, C_out, *roi_size). input: (N, C, H, W) or (N, C, D, H, W), a Tensor or array.
    roi_size: an int or one size per spatial axis. overlap: fraction of a tile shared with the
    next, in [0, 1). sw_batch_size: tiles per predictor call. mode: "gaussian" or "constant"
    blending; sigma_scale: the Gaussian's sigma per tile length. cval: the value padding an
    axis shorter than the tile.
    Runs without autograd; returns (N, C_out, *spatial) float32, a Tensor if input is one.
    """
    if not callable(predictor):
        raise TypeError(f"sliding_window: predictor must be callable, got "
                        f"{type(predictor).__name__}")
    was_tensor = isinstance(input, Tensor)
    x = input.data if was_tensor else input
    if not isinstance(x, np.ndarray):
        raise TypeError(f"sliding_window: input must be a Tensor or numpy array, got "
                        f"{type(input).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"sliding_window: input must be floating point, got dtype {x.dtype}")
    if x.ndim not in (4, 5):
        raise ValueError(f"sliding_window: input must be (N, C, H, W) or (N, C, D, H, W), got "
                         f"shape {x.shape}")
    spatial = x.shape[2:]
    dims = len(spatial)
    if isinstance(roi_size, numbers.Integral) and not isinstance(roi_size, bool):
        roi_size = (roi_size,) * dims
    if not isinstance(roi_size, (tuple, list)) or len(roi_size) != dims:
        raise ValueError(f"sliding_window: roi_size must be an int or {dims} sizes (one per "
                         f"spatial axis), got {roi_size!r}")
    roi_size = tuple(_check_int(r, "roi_size") for r in roi_size)
    overlap = _check_overlap(overlap, "sliding_window")
    sw_batch_size = _check_int(sw_batch_size, "sw_batch_size")
    if mode not in _MODES:
        raise ValueError(f"sliding_window: mode must be one of {_MODES}, got {mode!r}")
    if isinstance(sigma_scale, bool) or not isinstance(sigma_scale, numbers.Real) or \
            not sigma_scale > 0:
        raise ValueError(f"sliding_window: sigma_scale must be > 0, got {sigma_scale!r}")

    # an axis shorter than its tile: pad it (at the end) to the tile length, crop at the end
    padded = tuple(max(s, r) for s, r in zip(spatial, roi_size))
    if padded != spatial:
        widths = [(0, 0), (0, 0)] + [(0, p - s) for p, s in zip(padded, spatial)]
        x = np.pad(x, widths, mode="constant", constant_values=cval)
    x = x.astype(np.float32, copy=False)

    starts = [tile_starts(s, r, overlap) for s, r in zip(padded, roi_size)]
    corners = [(n,) + corner for n in range(x.shape[0])
               for corner in np.ndindex(*[len(s) for s in starts])]
    corners = [(c[0],) + tuple(starts[a][i] for a, i in enumerate(c[1:])) for c in corners]
    weights = gaussian_weights(roi_size, sigma_scale) if mode == "gaussian" \
        else np.ones(roi_size, np.float32)

    out = None
    weight_sum = np.zeros((x.shape[0], 1) + padded, np.float32)
    with no_grad():
        for b in range(0, len(corners), sw_batch_size):
            batch = corners[b:b + sw_batch_size]
            windows = [(c[0], slice(None)) + tuple(slice(s, s + r) for s, r in
                                                   zip(c[1:], roi_size)) for c in batch]
            tiles = np.stack([x[w] for w in windows])  # (B, C, *roi)
            pred = predictor(Tensor(tiles))
            pred = pred.data if isinstance(pred, Tensor) else np.asarray(pred)
            if pred.ndim != dims + 2 or pred.shape[0] != len(batch) or \
                    pred.shape[2:] != roi_size:
                raise ValueError(f"sliding_window: predictor must map (B, C, *roi_size) = "
                                 f"{tiles.shape} to (B, C_out, *roi_size), got {pred.shape}")
            if out is None:
                out = np.zeros((x.shape[0], pred.shape[1]) + padded, np.float32)
            for w, p in zip(windows, pred):
                out[w] += p * weights
                weight_sum[(w[0], slice(None)) + w[2:]] += weights
    out /= weight_sum
    out = out[(slice(None), slice(None)) + tuple(slice(0, s) for s in spatial)]
    out = np.ascontiguousarray(out)
    return Tensor(out) if was_tensor else out
