"""convengine.nn.functional.conv{1,2,3}d and conv_transpose{1,2,3}d: autograd Functions against
PyTorch (forward and every gradient) and the NumPy reference, gradcheck in float64, padding
modes and 'same', and the friendly errors."""

import numpy as np
import pytest

import convengine as ce
import convengine.nn.functional as F
from convengine.backends import reference as R
from conftest import tolerance


def _random(rng, shape, dtype=np.float32):
    return rng.standard_normal(shape).astype(dtype)


def _close_to_torch(actual, expected):
    """float32 against torch's float32: conftest's conv_vs_torch (rtol, atol), atol relative to
    the largest |expected| value (both sides round sums of many products)."""
    rtol, atol = tolerance(np.float32, "conv_vs_torch")
    expected = np.asarray(expected, dtype=np.float64)
    scale = max(1.0, float(np.abs(expected).max()) if expected.size else 1.0)
    np.testing.assert_allclose(np.asarray(actual, np.float64), expected, rtol=10 * rtol,
                               atol=atol * scale)


def _run_ours(fn, x, w, b, g, **kwargs):
    xt = ce.tensor(x, requires_grad=True)
    wt = ce.tensor(w, requires_grad=True)
    bt = None if b is None else ce.tensor(b, requires_grad=True)
    y = fn(xt, wt, bt, **kwargs)
    y.backward(g)
    return y.numpy(), xt.grad, wt.grad, None if bt is None else bt.grad


def _run_torch(fn, x, w, b, g, **kwargs):
    import torch

    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    y = fn(xt, wt, bt, **kwargs)
    y.backward(torch.tensor(g))
    return (y.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(),
            None if bt is None else bt.grad.numpy())


# (op, x shape, w shape, keyword arguments); padding in PyTorch's forms.
CONV_CASES = [
    ("conv2d", (2, 3, 9, 7), (4, 3, 3, 3), dict(padding=1)),
    ("conv2d", (1, 1, 8, 11), (5, 1, 3, 3), dict(stride=2, padding=1)),
    ("conv2d", (2, 4, 10, 9), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), dilation=(2, 1),
                                                 groups=2)),
    ("conv2d", (2, 6, 8, 8), (12, 1, 3, 3), dict(padding=1, groups=6)),
    ("conv2d", (2, 4, 7, 6), (8, 4, 1, 1), dict()),
    ("conv2d", (2, 4, 7, 6), (8, 4, 1, 1), dict(stride=2)),
    ("conv2d", (2, 3, 3, 4), (2, 3, 5, 5), dict(padding=2)),
    ("conv2d", (2, 3, 8, 7), (4, 3, 3, 3), dict(padding="same", dilation=2)),
    ("conv2d", (2, 3, 8, 7), (4, 3, 4, 2), dict(padding="same")),
    ("conv2d", (2, 3, 8, 7), (4, 3, 3, 3), dict(padding="valid", stride=2)),
    ("conv1d", (2, 3, 15), (4, 3, 5), dict(padding=2, stride=2)),
    ("conv1d", (1, 4, 12), (4, 1, 3), dict(padding="same", groups=4)),
    ("conv3d", (2, 2, 5, 6, 5), (3, 2, 3, 3, 3), dict(padding=1)),
    ("conv3d", (1, 4, 6, 5, 7), (4, 2, 3, 2, 3), dict(stride=(1, 2, 2), padding=(1, 0, 1),
                                                      groups=2)),
]

TRANSPOSE_CASES = [
    ("conv_transpose2d", (2, 4, 5, 6), (4, 3, 2, 2), dict(stride=2)),
    ("conv_transpose2d", (2, 3, 5, 4), (3, 2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose2d", (1, 4, 4, 5), (4, 2, 3, 3), dict(stride=(2, 3), padding=(1, 0),
                                                          output_padding=(1, 2), groups=2)),
    ("conv_transpose2d", (2, 2, 5, 5), (2, 3, 3, 3), dict(padding=1, output_padding=1,
                                                          dilation=2)),
    ("conv_transpose2d", (2, 3, 6, 5), (3, 1, 3, 3), dict(padding=1, groups=3)),
    ("conv_transpose1d", (2, 3, 9), (3, 2, 4), dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose3d", (1, 2, 3, 4, 3), (2, 3, 2, 3, 3), dict(stride=(2, 1, 2),
                                                                padding=(0, 1, 1),
                                                                output_padding=(1, 0, 0))),
]


def _case_id(case):
    return f"{case[0]}-{case[1]}-{case[2]}-" + ",".join(f"{k}={v}" for k, v in case[3].items())


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("case", CONV_CASES + TRANSPOSE_CASES,
                         ids=[_case_id(c) for c in CONV_CASES + TRANSPOSE_CASES])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "nobias"])
def test_forward_and_gradients_match_torch(rng, case, with_bias):
    torch = pytest.importorskip("torch")
    op, x_shape, w_shape, kwargs = case
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    out_channels = w_shape[1] * kwargs.get("groups", 1) if "transpose" in op else w_shape[0]
    b = _random(rng, (out_channels,)) if with_bias else None
    # The output gradient needs the output shape: run torch's forward first.
    with torch.no_grad():
        y_shape = getattr(torch.nn.functional, op)(torch.tensor(x), torch.tensor(w),
                                                   None if b is None else torch.tensor(b),
                                                   **kwargs).shape
    g = _random(rng, tuple(y_shape))
    expected = _run_torch(getattr(torch.nn.functional, op), x, w, b, g, **kwargs)
    ours = _run_ours(getattr(F, op), x, w, b, g, **kwargs)
    for name, a, e in zip(("output", "grad input", "grad weight", "grad bias"), ours, expected):
        if e is None:
            assert a is None
            continue
        assert a.dtype == np.float32, name
        _close_to_torch(a, e)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("op, x_shape, w_shape, padding", [
    ("conv2d", (2, 3, 7, 6), (4, 3, 3, 3), (1, 2)),
    ("conv1d", (2, 2, 9), (3, 2, 3), 2),
    ("conv3d", (1, 2, 4, 5, 4), (2, 2, 3, 3, 3), 1),
])
def test_padding_modes_match_torch(rng, mode, op, x_shape, w_shape, padding):
    """padding_mode as nn.Conv*d takes it: pad the input, then convolve unpadded."""
    torch = pytest.importorskip("torch")
    x, w, b = _random(rng, x_shape), _random(rng, w_shape), _random(rng, (w_shape[0],))
    nd = len(x_shape) - 2
    layer = getattr(torch.nn, f"Conv{nd}d")(x_shape[1], w_shape[0], w_shape[2:], padding=padding,
                                            padding_mode=mode)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w))
        layer.bias.copy_(torch.tensor(b))
    xt = torch.tensor(x, requires_grad=True)
    y_torch = layer(xt)
    g = _random(rng, tuple(y_torch.shape))
    y_torch.backward(torch.tensor(g))
    ours = _run_ours(getattr(F, op), x, w, b, g, padding=padding, padding_mode=mode)
    _close_to_torch(ours[0], y_torch.detach().numpy())
    _close_to_torch(ours[1], xt.grad.numpy())
    _close_to_torch(ours[2], layer.weight.grad.numpy())
    _close_to_torch(ours[3], layer.bias.grad.numpy())


@pytest.mark.parametrize("x_shape, w_shape, stride, dilation", [
    ((2, 3, 9, 8), (4, 3, 3, 3), 2, 1),
    ((1, 2, 10, 7), (3, 2, 4, 3), (3, 2), 1),
    ((2, 2, 11), (3, 2, 3), 2, 2),
    ((1, 2, 5, 6, 7), (2, 2, 3, 2, 3), (2, 1, 3), 1),
])
def test_same_padding_with_stride(rng, x_shape, w_shape, stride, dilation):
    """'same' for stride > 1 (PyTorch refuses it): output ceil(in / stride), padding split as
    TensorFlow does (the odd element after); checked against explicit asymmetric padding."""
    nd = len(x_shape) - 2
    x, w = _random(rng, x_shape), _random(rng, w_shape)
    fn = getattr(F, f"conv{nd}d")
    y = fn(ce.tensor(x), ce.tensor(w), stride=stride, padding="same", dilation=dilation).numpy()
    strides = (stride,) * nd if isinstance(stride, int) else stride
    assert y.shape[2:] == tuple(-(-n // s) for n, s in zip(x_shape[2:], strides))
    dil = (dilation,) * nd if isinstance(dilation, int) else dilation
    pads = []
    for n, k, s, d in zip(x_shape[2:], w_shape[2:], strides, dil):
        total = max((-(-n // s) - 1) * s + d * (k - 1) + 1 - n, 0)
        pads.append((total // 2, total - total // 2))
    expected = R.conv_forward(x.astype(np.float64), w.astype(np.float64), None, stride,
                              tuple(pads), dilation)
    _close_to_torch(y, expected)


def test_same_padding_with_stride_and_reflect_mode(rng):
    x, w = _random(rng, (1, 2, 9, 8)), _random(rng, (3, 2, 3, 3))
    y = F.conv2d(ce.tensor(x), ce.tensor(w), stride=2, padding="same", padding_mode="reflect")
    xp = np.pad(x, ((0, 0), (0, 0), (1, 1), (0, 1)), mode="reflect")
    _close_to_torch(y.numpy(), R.conv_forward(xp.astype(np.float64), w.astype(np.float64),
                                              None, 2, 0))


def test_unbatched_input(rng):
    x, w = _random(rng, (3, 6, 5)), _random(rng, (4, 3, 3, 3))
    y = F.conv2d(ce.tensor(x), ce.tensor(w), padding=1)
    assert y.shape == (4, 6, 5)
    expected = R.conv_forward(x[None].astype(np.float64), w.astype(np.float64), None, 1, 1)[0]
    _close_to_torch(y.numpy(), expected)


def test_only_needed_gradients_are_computed(rng):
    x = ce.tensor(_random(rng, (2, 3, 6, 6)))  # no grad
    w = ce.tensor(_random(rng, (4, 3, 3, 3)), requires_grad=True)
    y = F.conv2d(x, w, None, padding=1)
    ctx = y._ctx
    assert ctx.weight is None and ctx.x is not None  # weight is not kept: x needs no gradient
    y.sum().backward()
    assert x.grad is None and w.grad is not None
    with ce.no_grad():
        assert F.conv2d(x, w, padding=1)._ctx is None


# --------------------------------------------------------------------------- #
# gradcheck (float64 runs on the reference path)
# --------------------------------------------------------------------------- #

@pytest.mark.parametrize("op, x_shape, w_shape, kwargs", [
    ("conv2d", (1, 2, 5, 4), (3, 2, 3, 2), dict(stride=(2, 1), padding=1)),
    ("conv2d", (1, 4, 4, 4), (4, 2, 3, 3), dict(padding="same", groups=2, dilation=1)),
    ("conv2d", (1, 2, 4, 5), (2, 2, 3, 3), dict(padding=1, padding_mode="reflect")),
    ("conv1d", (2, 2, 6), (2, 1, 3), dict(padding=1, groups=2, dilation=2)),
    ("conv3d", (1, 1, 3, 4, 3), (2, 1, 2, 2, 2), dict(padding=(1, 0, 1))),
    ("conv_transpose2d", (1, 2, 3, 3), (2, 2, 3, 3), dict(stride=2, padding=1, output_padding=1)),
    ("conv_transpose1d", (1, 2, 4), (2, 1, 3), dict(stride=2, groups=2)),
])
def test_gradcheck_float64(rng, op, x_shape, w_shape, kwargs):
    transpose = "transpose" in op
    out_channels = w_shape[1] * kwargs.get("groups", 1) if transpose else w_shape[0]
    x = ce.tensor(_random(rng, x_shape, np.float64), requires_grad=True)
    w = ce.tensor(_random(rng, w_shape, np.float64), requires_grad=True)
    b = ce.tensor(_random(rng, (out_channels,), np.float64), requires_grad=True)
    rtol, atol = tolerance(np.float64, "gradcheck")
    assert ce.gradcheck(lambda x, w, b: getattr(F, op)(x, w, b, **kwargs), (x, w, b),
                        rtol=rtol, atol=atol)


def test_float32_and_float64_paths_agree(rng):
    x, w, b = _random(rng, (2, 3, 7, 6)), _random(rng, (4, 3, 3, 3)), _random(rng, (4,))
    g = _random(rng, (2, 4, 4, 3))
    ours32 = _run_ours(F.conv2d, x, w, b, g, stride=2, padding=1)
    ours64 = _run_ours(F.conv2d, x.astype(np.float64), w.astype(np.float64),
                       b.astype(np.float64), g.astype(np.float64), stride=2, padding=1)
    for a, e in zip(ours32, ours64):
        assert a.dtype == np.float32 and e.dtype == np.float64
        _close_to_torch(a, e)


# --------------------------------------------------------------------------- #
# friendly errors
# --------------------------------------------------------------------------- #

def _t(shape, dtype=np.float32):
    return ce.tensor(np.zeros(shape, dtype))


@pytest.mark.parametrize("call, error, match", [
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 2, 3, 3))), ValueError,
     r"conv2d: channel mismatch.*\(4, 3, 3, 3\)"),
    (lambda: F.conv2d(_t((2, 4, 5, 5)), _t((6, 2, 3, 3)), groups=3), ValueError,
     "conv2d: groups=3 must divide the input channels"),
    (lambda: F.conv2d(_t((2, 4, 5, 5)), _t((5, 2, 3, 3)), groups=2), ValueError,
     "conv2d: groups=2 must divide the output channels"),
    (lambda: F.conv2d(_t((2, 3, 2, 2)), _t((4, 3, 3, 3))), ValueError,
     r"conv2d: output size would be \(0, 0\)"),
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 3, 3, 3)), padding=-1), ValueError,
     "conv2d: padding must be non-negative"),
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 3, 3, 3)), stride=0), ValueError,
     "conv2d: stride must be >= 1"),
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 3, 3, 3)), padding=(1, 1, 1)), ValueError,
     "conv2d: padding must be an int, a tuple of 2"),
    (lambda: F.conv2d(_t((5, 5)), _t((4, 3, 3, 3))), ValueError,
     r"conv2d: input must be 4-D .* got shape \(5, 5\)"),
    (lambda: F.conv3d(_t((3, 5, 5)), _t((4, 3, 3, 3, 3))), ValueError,
     r"conv3d: input must be 5-D \(N, C, \*spatial\) or 4-D unbatched"),
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 3, 3))), ValueError, "conv2d: weight must be 4-D"),
    (lambda: F.conv2d(_t((2, 3, 5, 5), np.int64), _t((4, 3, 3, 3))), TypeError,
     "conv2d: input must be a floating-point tensor.*int64"),
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 3, 3, 3), np.int32)), TypeError,
     "conv2d: weight must be a floating-point tensor"),
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 3, 0, 3))), ValueError,
     "conv2d: kernel size must be >= 1"),
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 3, 3, 3)), _t((3,))), ValueError,
     r"conv2d: bias must have shape \(4,\)"),
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 3, 3, 3)), padding="full"), ValueError,
     "conv2d: padding string must be 'valid' or 'same'"),
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 3, 3, 3)), padding_mode="mirror"), ValueError,
     "conv2d: padding_mode"),
    (lambda: F.conv2d(_t((2, 3, 5, 5)), _t((4, 3, 3, 3)), stride=1.5), TypeError,
     "conv2d: stride must be an int"),
    (lambda: F.conv_transpose2d(_t((2, 3, 5, 5)), _t((4, 2, 3, 3))), ValueError,
     "conv_transpose2d: channel mismatch"),
    (lambda: F.conv_transpose2d(_t((2, 4, 5, 5)), _t((4, 2, 3, 3)), stride=2,
                                output_padding=2), ValueError,
     "conv_transpose2d: output_padding must be smaller"),
    (lambda: F.conv_transpose2d(_t((2, 4, 1, 1)), _t((4, 2, 1, 1)), padding=1), ValueError,
     "conv_transpose2d: output size would be"),
    (lambda: F.conv_transpose2d(_t((2, 4, 5, 5)), _t((4, 2, 3, 3)), groups=3), ValueError,
     "conv_transpose2d: groups=3 must divide the input channels"),
    (lambda: F.conv_transpose1d(_t((2, 4, 5, 5)), _t((4, 2, 3))), ValueError,
     "conv_transpose1d: input must be 3-D"),
])
def test_bad_arguments_raise_friendly_errors(call, error, match):
    with pytest.raises(error, match=match):
        call()
