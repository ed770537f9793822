"""Tests for the NumPy reference backend (convengine.backends.reference).

Two kinds of tests:
- torch-free: hand-computed examples, the adjoint identity for every linear backward
  pass, output sizes, and bad-input errors. These always run.
- against PyTorch (float64, tight tolerances) over sweeps of 1d/2d/3d shapes and
  parameters; skipped when torch is not installed.
"""

import zlib

import numpy as np
import pytest

from convengine.backends import reference as R
from conftest import tolerance

# float64 against torch: both sides sum the same products in a different order
RTOL, ATOL = tolerance("float64", "vs_torch")
# float32 against torch (float32 accumulation over whole convolution windows)
RTOL32, ATOL32 = tolerance("float32", "conv_vs_torch")


def _rng(*key):
    # stable across runs (str hashing is randomised per process)
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


def _close(actual, expected, rtol=RTOL, atol=ATOL):
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


# --------------------------------------------------------------------------- #
# case tables (shared by the torch comparisons and the adjoint tests)
# --------------------------------------------------------------------------- #

# (N, C, OC, in_spatial, kernel, stride, padding, dilation, groups)
CONV_CASES = [
    # 1d
    (2, 3, 4, (9,), (3,), 1, 0, 1, 1),
    (1, 1, 2, (7,), (2,), 3, 2, 1, 1),                  # batch 1, one channel, stride 3
    (2, 4, 4, (8,), (3,), 2, 1, 2, 4),                  # depthwise, dilation 2
    (2, 4, 6, (2,), (4,), 1, 1, 1, 2),                  # kernel > unpadded input
    # 2d
    (2, 3, 4, (5, 7), (3, 3), 1, 1, 1, 1),
    (1, 4, 6, (8, 6), (3, 2), (2, 1), (0, 2), (1, 2), 2),  # non-square everything
    (2, 3, 3, (9, 7), (2, 3), 3, 2, 2, 3),              # depthwise, stride 3, pad 2, dil 2
    (1, 1, 2, (3, 2), (4, 3), 1, 1, 1, 1),              # kernel > unpadded input
    (2, 4, 8, (6, 6), (1, 1), 2, 0, 1, 2),              # 1x1, stride 2
    (2, 6, 6, (7, 5), (3, 3), 2, 1, 1, 6),              # depthwise
    (2, 4, 8, (5, 5), (3, 3), 1, 2, 2, 4),              # depthwise multiplier 2
    (2, 2, 3, (11, 4), (5, 2), 3, (2, 0), 1, 1),        # last input rows unused (floor)
    # 3d
    (2, 2, 3, (4, 5, 3), (2, 3, 2), 1, 1, 1, 1),
    (1, 4, 4, (5, 4, 6), (3, 2, 3), (2, 1, 3), (1, 0, 2), (1, 2, 1), 2),
    (2, 3, 3, (3, 3, 3), (3, 3, 3), 2, 1, 1, 3),        # depthwise
    (1, 1, 1, (2, 2, 2), (3, 3, 3), 1, 1, 1, 1),        # kernel > unpadded input
]

# (N, C_in, C_out, in_spatial, kernel, stride, padding, output_padding, dilation, groups)
CONV_T_CASES = [
    # 1d
    (2, 3, 2, (5,), (3,), 1, 0, 0, 1, 1),
    (1, 1, 1, (4,), (3,), 3, 1, 2, 1, 1),               # output_padding 2 < stride 3
    (2, 4, 4, (5,), (3,), 1, 1, 1, 2, 4),               # output_padding < dilation, stride 1
    (2, 4, 6, (3,), (2,), 2, 0, 1, 1, 2),
    # 2d
    (2, 3, 4, (4, 5), (3, 3), 2, 1, 1, 1, 1),
    (1, 4, 2, (3, 4), (2, 3), (3, 1), (2, 0), (2, 0), (1, 2), 2),
    (2, 3, 3, (5, 3), (3, 2), 2, 2, 1, 2, 3),           # depthwise
    (1, 1, 2, (1, 1), (3, 3), 1, 0, 0, 1, 1),           # single pixel
    # 3d
    (2, 2, 3, (3, 2, 3), (2, 2, 3), 2, 1, 1, 1, 1),
    (1, 4, 4, (2, 3, 2), (3, 2, 2), (1, 2, 3), (0, 1, 1), (0, 1, 2), (2, 1, 1), 4),
]

# (N, C, in_spatial, kernel, stride, padding, dilation, ceil_mode)
MAX_POOL_CASES = [
    (2, 3, (9,), 3, 2, 1, 1, False),
    (1, 1, (8,), 2, None, 0, 1, True),
    (2, 2, (10,), 3, 3, 1, 2, True),
    (2, 3, (7, 8), (3, 2), (2, 1), (1, 1), 1, True),
    (1, 2, (9, 7), 3, 2, 1, 2, True),
    (2, 2, (5, 5), 2, 2, 0, 1, False),
    (1, 1, (6, 5), (2, 3), (3, 2), (1, 1), (2, 1), True),
    (1, 2, (5, 4, 6), (2, 2, 3), (2, 1, 2), (1, 0, 1), 1, True),
    (2, 1, (6, 5, 5), 3, 2, 1, (1, 2, 1), False),
]

# (N, C, in_spatial, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_POOL_CASES = [
    (2, 3, (9,), 3, 2, 1, False, True, None),
    (1, 1, (8,), 4, 3, 2, True, False, None),
    (2, 2, (7,), 2, None, 1, True, True, None),
    (2, 2, (7,), 3, 2, 1, True, True, 2),
    (2, 3, (7, 8), (3, 2), (2, 1), (1, 1), True, True, None),
    (2, 3, (7, 8), (3, 2), (2, 1), (1, 1), True, False, None),
    (1, 2, (5, 6), 3, 2, 1, True, True, 3),
    (1, 1, (6, 5), (2, 3), (3, 2), (1, 1), True, False, None),
    (2, 2, (5, 5), 2, 2, 0, False, True, None),
    (1, 2, (5, 4, 6), (2, 2, 3), (2, 1, 2), (1, 0, 1), True, True, None),
    (2, 1, (6, 5, 5), 3, 2, 1, True, False, 5),
    (1, 1, (4, 4, 4), 2, 3, 1, True, False, None),
]


def _conv_arrays(case, seed_tag):
    N, C, OC, spatial, kernel, stride, padding, dilation, groups = case
    rng = _rng(seed_tag, case)
    x = rng.standard_normal((N, C) + spatial)
    w = rng.standard_normal((OC, C // groups) + kernel)
    b = rng.standard_normal(OC)
    return x, w, b, dict(stride=stride, padding=padding, dilation=dilation, groups=groups)


def _conv_t_arrays(case, seed_tag):
    N, C_in, C_out, spatial, kernel, stride, padding, out_pad, dilation, groups = case
    rng = _rng(seed_tag, case)
    x = rng.standard_normal((N, C_in) + spatial)
    w = rng.standard_normal((C_in, C_out // groups) + kernel)
    b = rng.standard_normal(C_out)
    return x, w, b, dict(stride=stride, padding=padding, output_padding=out_pad,
                         dilation=dilation, groups=groups)


# --------------------------------------------------------------------------- #
# torch-free: hand-computed examples
# --------------------------------------------------------------------------- #

def test_conv1d_by_hand():
    x = np.array([[[1.0, 2.0, 3.0, 4.0]]])
    w = np.array([[[1.0, 0.0, -1.0]]])
    # xpad = [0, 1, 2, 3, 4, 0]; y[i] = xpad[i] - xpad[i + 2] + 0.5
    y = R.conv_forward(x, w, np.array([0.5]), padding=1)
    _close(y, [[[-1.5, -1.5, -1.5, 3.5]]])


def test_conv2d_by_hand():
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = np.ones((1, 1, 2, 2))
    _close(R.conv_forward(x, w), [[[[8.0, 12.0], [20.0, 24.0]]]])
    # stride 2 with padding 1: windows at (-1,-1), (-1,1), (1,-1), (1,1)
    _close(R.conv_forward(x, w, stride=2, padding=1), [[[[0.0, 3.0], [9.0, 24.0]]]])


def test_conv_groups_by_hand():
    x = np.arange(8.0).reshape(1, 2, 4)
    w = np.array([[[2.0]], [[3.0]]])                    # (OC=2, C/g=1, 1)
    _close(R.conv_forward(x, w, groups=2), np.stack([2 * x[0, 0], 3 * x[0, 1]])[None])
    # groups=1 with the same input mixes the channels
    w1 = np.array([[[1.0], [1.0]]])                     # (1, 2, 1)
    _close(R.conv_forward(x, w1), (x[:, :1] + x[:, 1:]))


def test_asymmetric_padding_by_hand():
    x = np.array([[[1.0, 2.0, 3.0]]])
    w = np.array([[[1.0, 10.0]]])
    # pad (2, 1): xpad = [0, 0, 1, 2, 3, 0]
    y = R.conv_forward(x, w, padding=((2, 1),))
    _close(y, [[[0.0, 10.0, 21.0, 32.0, 3.0]]])
    # 'same' with an even kernel puts the extra zero after, like PyTorch
    _close(R.conv_forward(x, w, padding="same"), [[[21.0, 32.0, 3.0]]])


def test_conv_transpose1d_by_hand():
    x = np.array([[[1.0, 2.0]]])
    w = np.array([[[1.0, 1.0, 1.0]]])
    # each input spreads over 3 outputs, 2 apart
    _close(R.conv_transpose_forward(x, w, stride=2), [[[1.0, 1.0, 3.0, 2.0, 2.0]]])
    # output_padding appends a row no tap reaches: it gets only the bias
    _close(R.conv_transpose_forward(x, w, np.array([0.5]), stride=2, output_padding=1),
           [[[1.5, 1.5, 3.5, 2.5, 2.5, 0.5]]])
    # padding crops from both ends
    _close(R.conv_transpose_forward(x, w, stride=2, padding=1), [[[1.0, 3.0, 2.0]]])


def test_max_pool_by_hand_ties_and_padding():
    x = np.array([[[1.0, 3.0, 2.0, 3.0, 0.0]]])
    out, idx = R.max_pool_forward(x, 3, stride=2, padding=1)
    _close(out, [[[3.0, 3.0, 3.0]]])
    np.testing.assert_array_equal(idx, [[[1, 1, 3]]])   # first maximum wins
    assert idx.dtype == np.int64
    g = R.max_pool_backward(np.array([[[1.0, 10.0, 100.0]]]), idx, x.shape)
    _close(g, [[[0.0, 11.0, 0.0, 100.0, 0.0]]])


def test_max_pool_nan_and_neg_inf():
    x = np.array([[[1.0, np.nan, 3.0, np.nan, 2.0]]])
    out, idx = R.max_pool_forward(x, 5)
    assert np.isnan(out).all() and idx.item() == 3     # last NaN, as PyTorch's CPU kernel
    # all -inf: padding is never picked, the first real element is
    x = np.full((1, 1, 4), -np.inf)
    out, idx = R.max_pool_forward(x, 3, stride=1, padding=1)
    np.testing.assert_array_equal(idx, [[[0, 0, 1, 2]]])


def test_max_pool2d_indices_are_flat_per_plane():
    x = np.zeros((2, 3, 4, 5))
    x[1, 2, 3, 4] = 1.0
    out, idx = R.max_pool_forward(x, 2, stride=2, ceil_mode=True)
    assert out.shape == (2, 3, 2, 3)
    assert idx[1, 2, 1, 2] == 3 * 5 + 4
    assert idx[0, 0, 0, 0] == 0 and idx[0, 0, 1, 1] == 2 * 5 + 2


def test_avg_pool_divisor_by_hand():
    x = np.ones((1, 1, 4))
    # k=3, s=2, p=1, ceil: windows [-1,2), [1,4), [3,6)->clipped to [3,5) by in+pad
    kw = dict(kernel_size=3, stride=2, padding=1, ceil_mode=True)
    _close(R.avg_pool_forward(x, **kw), [[[2 / 3, 1.0, 1 / 2]]])
    _close(R.avg_pool_forward(x, count_include_pad=False, **kw), [[[1.0, 1.0, 1.0]]])
    _close(R.avg_pool_forward(x, divisor_override=4, **kw), [[[0.5, 0.75, 0.25]]])
    g = R.avg_pool_backward(np.ones((1, 1, 3)), x.shape, **kw)
    _close(g, [[[1 / 3, 1 / 3 + 1 / 3, 1 / 3, 1 / 3 + 1 / 2]]])


def test_bias_grad_is_sum():
    g = _rng("bias").standard_normal((2, 3, 4, 5))
    _close(R.conv_backward_bias(g), g.sum(axis=(0, 2, 3)))
    assert R.conv_backward_bias(g[..., 0, 0]).shape == (3,)


def test_dtypes():
    x32 = np.ones((1, 2, 5, 5), np.float32)
    w32 = np.ones((3, 2, 3, 3), np.float32)
    assert R.conv_forward(x32, w32).dtype == np.float32
    assert R.conv_backward_input(np.ones((1, 3, 3, 3), np.float32), w32, x32.shape).dtype \
        == np.float32
    assert R.conv_forward(x32, w32.astype(np.float64)).dtype == np.float64
    assert R.conv_forward(x32.astype(np.int64), w32.astype(np.int64)).dtype == np.float64
    assert R.max_pool_forward(x32, 2)[0].dtype == np.float32
    assert R.avg_pool_forward(x32, 2).dtype == np.float32


# --------------------------------------------------------------------------- #
# torch-free: adjoint identities
# --------------------------------------------------------------------------- #

def _dot(a, b):
    return float(np.sum(a * b))


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_adjoint_identity(case):
    # <conv(x, w), g> == <x, backward_input(g, w)> == <w, backward_weight(g, x)>
    x, w, b, kw = _conv_arrays(case, "adj")
    y = R.conv_forward(x, w, **kw)
    g = _rng("adj-g", case).standard_normal(y.shape)
    gx = R.conv_backward_input(g, w, x.shape, **kw)
    gw = R.conv_backward_weight(g, x, w.shape, **kw)
    assert gx.shape == x.shape and gw.shape == w.shape
    ref = _dot(y, g)
    assert _dot(x, gx) == pytest.approx(ref, rel=1e-10, abs=1e-10)
    assert _dot(w, gw) == pytest.approx(ref, rel=1e-10, abs=1e-10)
    # bias: y(b) - y(0) is linear in b
    yb = R.conv_forward(x, w, b, **kw)
    assert _dot(yb - y, g) == pytest.approx(_dot(b, R.conv_backward_bias(g)), rel=1e-10,
                                            abs=1e-10)


@pytest.mark.parametrize("case", CONV_T_CASES)
def test_conv_transpose_adjoint_identity(case):
    x, w, b, kw = _conv_t_arrays(case, "adj-t")
    y = R.conv_transpose_forward(x, w, **kw)
    g = _rng("adj-t-g", case).standard_normal(y.shape)
    gx = R.conv_transpose_backward_input(g, w, x.shape, **kw)
    gw = R.conv_transpose_backward_weight(g, x, w.shape, **kw)
    assert gx.shape == x.shape and gw.shape == w.shape
    ref = _dot(y, g)
    assert _dot(x, gx) == pytest.approx(ref, rel=1e-10, abs=1e-10)
    assert _dot(w, gw) == pytest.approx(ref, rel=1e-10, abs=1e-10)


def _op_below_stride(case):
    nd = len(case[3])
    return bool(np.all(np.broadcast_to(case[7], nd) < np.broadcast_to(case[5], nd)))


@pytest.mark.parametrize("case", [c for c in CONV_T_CASES if _op_below_stride(c)])
def test_conv_transpose_is_conv_backward_input(case):
    # with output_padding < stride, the conv of the transposed output has x's shape and
    # transposed conv forward is exactly conv backward-input
    x, w, _, kw = _conv_t_arrays(case, "t-vs-bi")
    y = R.conv_transpose_forward(x, w, **kw)
    kw.pop("output_padding")
    _close(R.conv_backward_input(x, w, y.shape, **kw), y, rtol=0, atol=0)


@pytest.mark.parametrize("pads, output_padding", [
    (((1, 2),), 0),
    (((0, 1), (2, 0)), (1, 0)),
])
def test_conv_transpose_asymmetric_padding_crops_the_full_output(pads, output_padding):
    # padding (before, after) removes `before` rows at the start and `after` at the end
    nd = len(pads)
    rng = _rng("t-asym", pads)
    x = rng.standard_normal((2, 2) + (3,) * nd)
    w = rng.standard_normal((2, 3) + (3,) * nd)
    op = (output_padding,) * nd if isinstance(output_padding, int) else output_padding
    full = R.conv_transpose_forward(x, w, stride=2, output_padding=op)
    crop = tuple(slice(lo, full.shape[2 + i] - hi) for i, (lo, hi) in enumerate(pads))
    y = R.conv_transpose_forward(x, w, stride=2, padding=pads, output_padding=op)
    _close(y, full[(Ellipsis,) + crop], rtol=0, atol=0)
    g = rng.standard_normal(y.shape)
    kw = dict(stride=2, padding=pads, output_padding=op)
    ref = _dot(y, g)
    assert _dot(x, R.conv_transpose_backward_input(g, w, x.shape, **kw)) == \
        pytest.approx(ref, rel=1e-10)
    assert _dot(w, R.conv_transpose_backward_weight(g, x, w.shape, **kw)) == \
        pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize("case", AVG_POOL_CASES)
def test_avg_pool_adjoint_identity(case):
    N, C, spatial, k, s, p, ceil, cip, div = case
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip,
              divisor_override=div)
    x = _rng("adj-avg", case).standard_normal((N, C) + spatial)
    y = R.avg_pool_forward(x, **kw)
    g = _rng("adj-avg-g", case).standard_normal(y.shape)
    gx = R.avg_pool_backward(g, x.shape, **kw)
    assert _dot(x, gx) == pytest.approx(_dot(y, g), rel=1e-10, abs=1e-10)


@pytest.mark.parametrize("case", MAX_POOL_CASES)
def test_max_pool_backward_is_adjoint_of_gather(case):
    # with the indices fixed, max pooling is the gather x.flat[idx]
    N, C, spatial, k, s, p, d, ceil = case
    x = _rng("adj-max", case).standard_normal((N, C) + spatial)
    out, idx = R.max_pool_forward(x, k, s, p, d, ceil)
    gathered = np.take_along_axis(x.reshape(N, C, -1), idx.reshape(N, C, -1), axis=2)
    _close(out.reshape(N, C, -1), gathered, rtol=0, atol=0)
    g = _rng("adj-max-g", case).standard_normal(out.shape)
    gx = R.max_pool_backward(g, idx, x.shape)
    assert _dot(x, gx) == pytest.approx(_dot(out, g), rel=1e-10, abs=1e-10)


# --------------------------------------------------------------------------- #
# torch-free: output sizes and errors
# --------------------------------------------------------------------------- #

def test_output_size():
    assert R.output_size((7, 8), 3) == (5, 6)
    assert R.output_size(10, 3, stride=2, padding=1, dilation=2) == (4,)
    assert R.output_size((5,), 3, padding=((2, 1),)) == (6,)
    # ceil_mode: 4 windows would fit by rounding up, but the 4th would start at 6,
    # past the input (5) and left padding (1), so PyTorch drops it
    assert R.output_size(5, 2, stride=2, padding=1, ceil_mode=True) == (3,)
    assert R.output_size(6, 2, stride=2, padding=1, ceil_mode=True) == (4,)
    assert R.output_size(6, 2, stride=2, padding=1, ceil_mode=False) == (4,)
    assert R.output_size(7, 2, stride=2, ceil_mode=True) == (4,)
    assert R.conv_output_shape((2, 4, 9, 9), (6, 2, 3, 3), stride=2, padding=1, groups=2) \
        == (2, 6, 5, 5)
    assert R.conv_transpose_output_shape((2, 4, 5, 5), (4, 3, 3, 3), stride=2, padding=1,
                                         output_padding=1, groups=2) == (2, 6, 10, 10)
    assert R.pool_output_shape((1, 3, 7, 8), 3, 2, 1, ceil_mode=True) == (1, 3, 4, 5)


def _x(*shape):
    return np.zeros(shape)


BAD_INPUTS = [
    # (call, exception, message fragments)
    (lambda: R.output_size(2, 3), ValueError, ["output size", "kernel"]),
    (lambda: R.conv_forward(_x(1, 2, 2, 2), _x(1, 2, 3, 3)), ValueError,
     ["conv_forward", "output size"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 3, 3, 3)), ValueError,
     ["conv_forward", "channel mismatch", "(1, 2, *kernel)", "(1, 3, 3, 3)"]),
    (lambda: R.conv_forward(_x(1, 3, 5, 5), _x(4, 1, 3, 3), groups=2), ValueError,
     ["conv_forward", "groups=2", "C=3"]),
    (lambda: R.conv_forward(_x(1, 4, 5, 5), _x(3, 2, 3, 3), groups=2), ValueError,
     ["conv_forward", "groups=2", "OC=3"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 2, 3, 3), groups=0), ValueError,
     ["conv_forward", "groups"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 2, 3, 3), padding=-1), ValueError,
     ["conv_forward", "padding", "non-negative"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 2, 3, 3), padding=((1, -1), 0)),
     ValueError, ["conv_forward", "padding"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 2, 3, 3), stride=0), ValueError,
     ["conv_forward", "stride", ">= 1"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 2, 3, 3), dilation=(1, 0)), ValueError,
     ["conv_forward", "dilation"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 2, 3, 3), stride=(1, 1, 1)), ValueError,
     ["conv_forward", "stride", "tuple of 2 ints"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 2, 3, 3), stride=1.5), TypeError,
     ["conv_forward", "stride"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 2, 0, 3)), ValueError,
     ["conv_forward", "kernel size", "(1, 2, 0, 3)"]),
    (lambda: R.conv_forward(_x(2, 5, 5), _x(1, 2, 3, 3)), ValueError,
     ["conv_forward", "w", "(2, 5, 5)", "(1, 2, 3, 3)"]),
    (lambda: R.conv_forward(_x(5, 5), _x(5, 5)), ValueError,
     ["conv_forward", "x", "(5, 5)", "ndim 2"]),
    (lambda: R.conv_forward(_x(1, 1, 2, 2, 2, 2), _x(1, 1, 1, 1, 1, 1)), ValueError,
     ["conv_forward", "x", "ndim 6"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(4, 2, 3, 3), bias=_x(3)), ValueError,
     ["conv_forward", "bias", "(4)", "(3)"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 2, 3, 3), stride=2, padding="same"),
     ValueError, ["conv_forward", "same", "stride"]),
    (lambda: R.conv_forward(_x(1, 2, 5, 5), _x(1, 2, 3, 3), padding="full"),
     ValueError, ["conv_forward", "padding"]),
    (lambda: R.conv_backward_input(_x(1, 4, 3, 3), _x(4, 2, 3, 3), (1, 2, 6, 5)),
     ValueError, ["conv_backward_input", "grad_out", "(1, 4, 4, 3)", "(1, 4, 3, 3)"]),
    (lambda: R.conv_backward_weight(_x(1, 4, 3, 3), _x(1, 2, 5, 5), (4, 1, 3, 3)),
     ValueError, ["conv_backward_weight", "weight_shape", "(4, 2, *kernel)"]),
    (lambda: R.conv_transpose_forward(_x(1, 2, 3), _x(3, 1, 3)), ValueError,
     ["conv_transpose_forward", "channel mismatch", "(3, 1, 3)"]),
    (lambda: R.conv_transpose_forward(_x(1, 2, 3), _x(2, 1, 3), stride=2, output_padding=2),
     ValueError, ["conv_transpose_forward", "output_padding"]),
    (lambda: R.conv_transpose_forward(_x(1, 2, 1), _x(2, 1, 1), padding=1), ValueError,
     ["conv_transpose_forward", "output size"]),
    (lambda: R.conv_transpose_backward_input(_x(1, 1, 4), _x(2, 1, 3), (1, 2, 3)),
     ValueError, ["conv_transpose_backward_input", "grad_out", "(1, 1, 5)", "(1, 1, 4)"]),
    (lambda: R.max_pool_forward(_x(1, 1, 5, 5), 3, padding=2), ValueError,
     ["max_pool_forward", "padding", "half"]),
    (lambda: R.max_pool_forward(_x(1, 1, 5, 5), 0), ValueError,
     ["max_pool_forward", "kernel_size"]),
    (lambda: R.max_pool_forward(_x(1, 1, 5, 5), 2, stride=0), ValueError,
     ["max_pool_forward", "stride"]),
    (lambda: R.max_pool_forward(_x(1, 1, 2, 2), 3, dilation=2, padding=1), ValueError,
     ["max_pool_forward", "output size"]),
    (lambda: R.max_pool_forward(_x(1, 1, 5, 5), (2, 2, 2)), ValueError,
     ["max_pool_forward", "kernel_size", "tuple of 2 ints"]),
    (lambda: R.max_pool_forward(_x(5,), 2), ValueError, ["max_pool_forward", "x", "(5)"]),
    (lambda: R.max_pool_backward(_x(1, 1, 2), np.zeros((1, 1, 2), np.int64), (1, 2, 4)),
     ValueError, ["max_pool_backward", "grad_out", "(1, 2, 4)"]),
    (lambda: R.max_pool_backward(_x(1, 1, 2), np.array([[[0, 4]]]), (1, 1, 4)),
     ValueError, ["max_pool_backward", "indices", "[0, 4)"]),
    (lambda: R.max_pool_backward(_x(1, 1, 2), np.zeros((1, 1, 3), np.int64), (1, 1, 4)),
     ValueError, ["max_pool_backward", "indices", "(1, 1, 2)", "(1, 1, 3)"]),
    (lambda: R.avg_pool_forward(_x(1, 1, 5, 5), 2, divisor_override=0), ValueError,
     ["avg_pool_forward", "divisor_override"]),
    (lambda: R.avg_pool_forward(_x(1, 1, 5, 5), 2, padding=-1), ValueError,
     ["avg_pool_forward", "padding"]),
    (lambda: R.avg_pool_backward(_x(1, 1, 3, 3), (1, 1, 5, 5), 2), ValueError,
     ["avg_pool_backward", "grad_out", "(1, 1, 2, 2)", "(1, 1, 3, 3)"]),
]


@pytest.mark.parametrize("call, exc, fragments", BAD_INPUTS)
def test_bad_inputs(call, exc, fragments):
    with pytest.raises(exc) as info:
        call()
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


# --------------------------------------------------------------------------- #
# against PyTorch (float64)
# --------------------------------------------------------------------------- #

def _torch_fn(name, nd):
    torch = pytest.importorskip("torch")
    return torch, getattr(torch.nn.functional, f"{name}{nd}d")


def _torch_grads(torch, out, inputs, grad):
    grads = torch.autograd.grad(out, inputs, torch.from_numpy(grad))
    return [g.numpy() for g in grads]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv_vs_torch(case):
    x, w, b, kw = _conv_arrays(case, "torch-conv")
    torch, conv = _torch_fn("conv", x.ndim - 2)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = conv(tx, tw, tb, **kw)
    y = R.conv_forward(x, w, b, **kw)
    assert y.shape == tuple(ty.shape)
    _close(y, ty.detach().numpy())
    g = _rng("torch-conv-g", case).standard_normal(y.shape)
    gx, gw, gb = _torch_grads(torch, ty, (tx, tw, tb), g)
    _close(R.conv_backward_input(g, w, x.shape, **kw), gx)
    _close(R.conv_backward_weight(g, x, w.shape, **kw), gw)
    _close(R.conv_backward_bias(g), gb)


# (in_spatial, kernel, dilation, padding as pairs)
ASYM_CASES = [
    ((7,), (4,), (1,), ((1, 2),)),
    ((6, 5), (2, 3), (2, 1), ((1, 2), (0, 1))),
    ((4, 5, 3), (2, 2, 3), (1, 2, 1), ((0, 1), (2, 0), (1, 1))),
]


@pytest.mark.parametrize("case", ASYM_CASES)
def test_asymmetric_padding_vs_torch(case):
    spatial, kernel, dilation, pads = case
    torch, conv = _torch_fn("conv", len(spatial))
    rng = _rng("asym", case)
    x = rng.standard_normal((2, 2) + spatial)
    w = rng.standard_normal((3, 2) + kernel)
    kw = dict(stride=1, padding=pads, dilation=dilation)
    # torch: pad explicitly (F.pad lists the last dim first), then a valid conv
    flat = [p for pair in reversed(pads) for p in pair]
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    ty = conv(torch.nn.functional.pad(tx, flat), tw, dilation=dilation)
    y = R.conv_forward(x, w, **kw)
    _close(y, ty.detach().numpy())
    g = _rng("asym-g", case).standard_normal(y.shape)
    gx, gw = _torch_grads(torch, ty, (tx, tw), g)
    _close(R.conv_backward_input(g, w, x.shape, **kw), gx)
    _close(R.conv_backward_weight(g, x, w.shape, **kw), gw)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", ASYM_CASES)
def test_same_padding_vs_torch(case):
    spatial, kernel, dilation, _ = case
    torch, conv = _torch_fn("conv", len(spatial))
    rng = _rng("same", case)
    x = rng.standard_normal((1, 2) + spatial)
    w = rng.standard_normal((2, 2) + kernel)
    y = R.conv_forward(x, w, padding="same", dilation=dilation)
    assert y.shape[2:] == x.shape[2:]
    _close(y, conv(torch.tensor(x), torch.tensor(w), padding="same",
                   dilation=dilation).numpy())


@pytest.mark.parametrize("case", CONV_T_CASES)
def test_conv_transpose_vs_torch(case):
    x, w, b, kw = _conv_t_arrays(case, "torch-conv-t")
    torch, conv_t = _torch_fn("conv_transpose", x.ndim - 2)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    ty = conv_t(tx, tw, tb, **kw)
    y = R.conv_transpose_forward(x, w, b, **kw)
    assert y.shape == tuple(ty.shape)
    assert y.shape == R.conv_transpose_output_shape(x.shape, w.shape, **kw)
    _close(y, ty.detach().numpy())
    g = _rng("torch-conv-t-g", case).standard_normal(y.shape)
    gx, gw, gb = _torch_grads(torch, ty, (tx, tw, tb), g)
    _close(R.conv_transpose_backward_input(g, w, x.shape, **kw), gx)
    _close(R.conv_transpose_backward_weight(g, x, w.shape, **kw), gw)
    _close(R.conv_backward_bias(g), gb)


@pytest.mark.parametrize("data", ["normal", "ties"])
@pytest.mark.parametrize("case", MAX_POOL_CASES)
def test_max_pool_vs_torch(case, data):
    N, C, spatial, k, s, p, d, ceil = case
    torch, pool = _torch_fn("max_pool", len(spatial))
    rng = _rng("torch-max", case)
    if data == "normal":
        x = rng.standard_normal((N, C) + spatial)
    else:  # few distinct values: many ties, checks which index wins
        x = rng.integers(0, 3, (N, C) + spatial).astype(np.float64)
    tx = torch.tensor(x, requires_grad=True)
    tout, tidx = pool(tx, k, s, p, d, ceil_mode=ceil, return_indices=True)
    out, idx = R.max_pool_forward(x, k, s, p, d, ceil)
    assert out.shape == tuple(tout.shape)
    assert out.shape == R.pool_output_shape(x.shape, k, s, p, d, ceil)
    _close(out, tout.detach().numpy(), rtol=0, atol=0)
    np.testing.assert_array_equal(idx, tidx.numpy())
    g = _rng("torch-max-g", case).standard_normal(out.shape)
    (gx,) = _torch_grads(torch, tout, (tx,), g)
    _close(R.max_pool_backward(g, idx, x.shape), gx)


def test_max_pool_nan_vs_torch():
    torch, pool = _torch_fn("max_pool", 2)
    x = _rng("nan").standard_normal((1, 2, 6, 7))
    x[0, 0, 1, 1] = x[0, 0, 2, 2] = x[0, 1, 4, 5] = np.nan
    out, idx = R.max_pool_forward(x, 3, 2, 1, ceil_mode=True)
    tout, tidx = pool(torch.tensor(x), 3, 2, 1, ceil_mode=True, return_indices=True)
    np.testing.assert_array_equal(out, tout.numpy())    # treats NaN == NaN
    np.testing.assert_array_equal(idx, tidx.numpy())


def _torch_avg_pool(torch, x, nd, k, s, p, ceil, cip, div):
    F = torch.nn.functional
    if nd == 1:
        # avg_pool1d has no divisor_override: run the 1d case as a (1, L) 2d pool
        s = k if s is None else s
        return F.avg_pool2d(x.unsqueeze(-2), (1, k), (1, s), (0, p), ceil, cip,
                            div).squeeze(-2)
    pool = getattr(F, f"avg_pool{nd}d")
    return pool(x, k, s, p, ceil, cip, div)


@pytest.mark.parametrize("case", AVG_POOL_CASES)
def test_avg_pool_vs_torch(case):
    torch = pytest.importorskip("torch")
    N, C, spatial, k, s, p, ceil, cip, div = case
    kw = dict(kernel_size=k, stride=s, padding=p, ceil_mode=ceil, count_include_pad=cip,
              divisor_override=div)
    x = _rng("torch-avg", case).standard_normal((N, C) + spatial)
    tx = torch.tensor(x, requires_grad=True)
    tout = _torch_avg_pool(torch, tx, len(spatial), k, s, p, ceil, cip, div)
    out = R.avg_pool_forward(x, **kw)
    assert out.shape == tuple(tout.shape)
    _close(out, tout.detach().numpy())
    g = _rng("torch-avg-g", case).standard_normal(out.shape)
    (gx,) = _torch_grads(torch, tout, (tx,), g)
    _close(R.avg_pool_backward(g, x.shape, **kw), gx)


def test_float32_vs_torch():
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    rng = _rng("f32")
    x = rng.standard_normal((2, 4, 9, 8)).astype(np.float32)
    w = rng.standard_normal((6, 2, 3, 3)).astype(np.float32)
    kw = dict(stride=2, padding=1, dilation=1, groups=2)
    y = R.conv_forward(x, w, **kw)
    assert y.dtype == np.float32
    _close(y, F.conv2d(torch.from_numpy(x), torch.from_numpy(w), **kw).numpy(),
           RTOL32, ATOL32)
    wt = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    yt = R.conv_transpose_forward(x, wt, stride=2, padding=1, output_padding=1)
    assert yt.dtype == np.float32
    _close(yt, F.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(wt), stride=2,
                                  padding=1, output_padding=1).numpy(), RTOL32, ATOL32)
