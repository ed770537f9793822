"""Activation kernels of convengine._C under every kernel variant and thread count: accuracy of
the vectorised math (ulp against float64), gradients, softmax along every dim and at large
magnitudes, special values, and the boundary checks."""

import math

import numpy as np
import pytest

from convengine import _C
from conftest import assert_close

# Lengths around vector widths, the 8192-element chunk and the threading threshold.
SIZES = [0, 1, 7, 16, 17, 8193, 70001]

BETA, KAPPA = math.sqrt(2 / math.pi), 0.044715


def _erfc(x):
    return np.vectorize(math.erfc, otypes=[np.float64])(x)


def normal_cdf(x):
    return 0.5 * _erfc(-x / math.sqrt(2.0))


def sigmoid64(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def gelu_tanh64(x):
    return x * sigmoid64(2 * BETA * (x + KAPPA * x ** 3))  # = 0.5 x (1 + tanh(u)), no cancelling


# name -> (forward in float32 via _C, float64 forward, float64 derivative, saved: "x" or "y")
FUNCTIONS = {
    "sigmoid": (_C.sigmoid, sigmoid64, lambda x: sigmoid64(x) * (1 - sigmoid64(x)), "y"),
    "tanh": (_C.tanh, np.tanh, lambda x: 1 - np.tanh(x) ** 2, "y"),
    "elu": (lambda x: _C.elu(x, 1.0), lambda x: np.where(x <= 0, np.expm1(np.minimum(x, 0)), x),
            lambda x: np.where(x <= 0, np.exp(np.minimum(x, 0)), 1.0), "x"),
    "gelu": (_C.gelu, lambda x: x * normal_cdf(x),
             lambda x: normal_cdf(x) + x * np.exp(-x * x / 2) / math.sqrt(2 * math.pi), "x"),
    "gelu_tanh": (lambda x: _C.gelu(x, "tanh"), gelu_tanh64,
                  lambda x: (sigmoid64(2 * BETA * (x + KAPPA * x ** 3))
                             + x * 2 * BETA * (1 + 3 * KAPPA * x * x)
                             * sigmoid64(2 * BETA * (x + KAPPA * x ** 3))
                             * sigmoid64(-2 * BETA * (x + KAPPA * x ** 3))), "x"),
}

BACKWARD = {
    "sigmoid": _C.sigmoid_backward,
    "tanh": _C.tanh_backward,
    "elu": lambda g, x: _C.elu_backward(g, x, 1.0),
    "gelu": _C.gelu_backward,
    "gelu_tanh": lambda g, x: _C.gelu_backward(g, x, "tanh"),
}

# Largest error allowed, in units in the last place of the float32 result (measured: sigmoid
# 2.5, tanh 1.5, elu 0.9, gelu 5.1, gelu_tanh 3.1).
MAX_ULP = {"sigmoid": 3, "tanh": 2, "elu": 2, "gelu": 6, "gelu_tanh": 4}


def accuracy_grid():
    rng = np.random.default_rng(7)
    return np.concatenate([
        np.linspace(-20, 20, 40001), rng.standard_normal(20000) * 3,
        np.linspace(-1e-3, 1e-3, 2001), np.linspace(-100, 100, 2001),
        [0.0, -0.0, 1e-30, -1e-30, 0.625, -0.625, 0.7, -0.7],
    ]).astype(np.float32)


def ulp_error(got, expected):
    spacing = np.spacing(np.abs(expected.astype(np.float32))).astype(np.float64)
    return np.abs(got.astype(np.float64) - expected) / spacing


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_forward_accuracy_in_ulp(isa, name):
    forward, reference, _, _ = FUNCTIONS[name]
    x = accuracy_grid()
    with np.errstate(over="ignore", under="ignore"):
        expected = reference(x.astype(np.float64))
    got = forward(x)
    normal = np.abs(expected) > 1e-30  # subnormal results have fewer bits to be exact in
    error = ulp_error(got[normal], expected[normal])
    worst = int(np.argmax(error))
    assert error[worst] <= MAX_ULP[name], (
        f"{name}: {error[worst]:.2f} ulp at x={x[normal][worst]!r}: got "
        f"{got[normal][worst]!r}, expected {expected[normal][worst]!r}")
    assert_close(got[~normal], expected[~normal], "exact_ops", np.float32)


def dense_sweep():
    """Every 4099th float32 bit pattern from +0 to 20 (subnormals included) and their
    negatives: about 540k inputs spread evenly over the exponent range, so every binade,
    both tails and the switch-over points between approximations are visited."""
    pos = np.arange(0, 0x41A00000, 4099, dtype=np.uint32).view(np.float32)
    return np.concatenate([pos, -pos])


@pytest.mark.parametrize("name", ["sigmoid", "tanh", "gelu", "gelu_tanh"])
def test_dense_sweep_accuracy_in_ulp(isa, name):
    forward, reference, _, _ = FUNCTIONS[name]
    x = dense_sweep()
    with np.errstate(over="ignore", under="ignore"):
        expected = reference(x.astype(np.float64))
    got = forward(x)
    normal = np.abs(expected) >= np.finfo(np.float32).tiny
    error = ulp_error(got[normal], expected[normal])
    worst = int(np.argmax(error))
    # (measured: sigmoid 2.5, tanh 1.5, gelu 6.5 without FMA, 5.4 with, gelu_tanh 2.7)
    assert error[worst] <= MAX_ULP[name] + (name == "gelu"), (
        f"{name}: {error[worst]:.2f} ulp at x={x[normal][worst]!r}")
    # subnormal results (gelu near x = -13.5, gelu_tanh near -10.5): within two units of the smallest subnormal
    assert np.all(np.abs(got[~normal] - expected[~normal]) <= 2 * 2.0 ** -149)


@pytest.mark.parametrize("name", sorted(FUNCTIONS))
def test_backward_matches_float64(isa, rng, name):
    forward, _, derivative, saved = FUNCTIONS[name]
    x = np.concatenate([np.linspace(-12, 12, 20001), [0.0, -0.0]]).astype(np.float32)
    grad = rng.uniform(-2, 2, x.size).astype(np.float32)
    with np.errstate(over="ignore", under="ignore"):
        expected = grad * derivative(x.astype(np.float64))
    got = BACKWARD[name](grad, forward(x) if saved == "y" else x)
    assert_close(got, expected, "activation_grad", np.float32)


@pytest.mark.parametrize("n", SIZES)
def test_every_length_and_thread_count(isa, threads, rng, n):
    x = rng.uniform(-6, 6, n).astype(np.float32)
    g = rng.uniform(-1, 1, n).astype(np.float32)
    x64 = x.astype(np.float64)
    np.testing.assert_array_equal(_C.leaky_relu(x, 0.1), np.where(x > 0, x, x * np.float32(0.1)))
    np.testing.assert_array_equal(_C.leaky_relu_backward(g, x, 0.1),
                                  np.where(x > 0, g, g * np.float32(0.1)))
    for name, (forward, reference, derivative, saved) in FUNCTIONS.items():
        y = forward(x)
        assert_close(y, reference(x64), "vs_torch", np.float32)
        assert_close(BACKWARD[name](g, y if saved == "y" else x), g * derivative(x64),
                     "activation_grad", np.float32)


def test_special_values(isa):
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 1e-40, -1e-40],
                 dtype=np.float32)
    nan, inf = np.nan, np.inf
    expected = {  # as PyTorch 2.13, except gelu(+inf) = +inf where PyTorch gives NaN
        "sigmoid": [nan, 1, 0, 0.5, 0.5, 1, 0, 0.5, 0.5],
        "tanh": [nan, 1, -1, 0, -0.0, 1, -1, 1e-40, -1e-40],
        "elu": [nan, inf, -1, 0, -0.0, 1e30, -1, 1e-40, -1e-40],
        "gelu": [nan, inf, nan, 0, -0.0, 1e30, -0.0, 5e-41, -5e-41],
        "gelu_tanh": [nan, inf, nan, 0, -0.0, 1e30, -0.0, 5e-41, -5e-41],
    }
    for name, values in expected.items():
        got = FUNCTIONS[name][0](x)
        want = np.array(values, dtype=np.float32)
        np.testing.assert_array_equal(got, want, err_msg=name)
        np.testing.assert_array_equal(np.signbit(got[3:5]), np.signbit(want[3:5]), err_msg=name)
    leaky = _C.leaky_relu(x, 0.01)
    np.testing.assert_array_equal(leaky, np.where(x > 0, x, x * np.float32(0.01)))


# ----- softmax ---------------------------------------------------------------------------------

def softmax64(x, dim, log):
    x = x.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        shifted = x - np.max(x, axis=dim, keepdims=True)
        total = np.sum(np.exp(shifted), axis=dim, keepdims=True)
        return shifted - np.log(total) if log else np.exp(shifted) / total


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("shape", [(2, 3, 5, 7), (3, 1000), (2, 5, 600), (1,), (4, 1, 3)])
def test_softmax_along_every_dim(isa, threads, rng, shape, log):
    x = (rng.standard_normal(shape) * 3).astype(np.float32)
    forward = _C.log_softmax if log else _C.softmax
    backward = _C.log_softmax_backward if log else _C.softmax_backward
    for dim in list(range(len(shape))) + [-1]:
        y = forward(x, dim)
        assert_close(y, softmax64(x, dim, log), "reduction", np.float32)
        g = rng.standard_normal(shape).astype(np.float32)
        y64 = softmax64(x, dim, log)
        if log:
            expected = g - np.exp(y64) * g.sum(axis=dim, keepdims=True)
        else:
            expected = y64 * (g - (g * y64).sum(axis=dim, keepdims=True))
        assert_close(backward(g, y, dim), expected, "reduction", np.float32)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
@pytest.mark.parametrize("n", [15, 16, 17, 32, 33, 56])
def test_softmax_lengths_around_the_vector_width(isa, rng, n, log):
    # rows run in 16-float vectors plus one padded vector; columns in blocks of vectors
    forward = _C.log_softmax if log else _C.softmax
    backward = _C.log_softmax_backward if log else _C.softmax_backward
    x = (rng.standard_normal((3, n, n + 2)) * 4).astype(np.float32)
    for dim in (1, 2):
        y = forward(x, dim)
        y64 = softmax64(x, dim, log)
        assert_close(y, y64, "reduction", np.float32)
        g = rng.standard_normal(x.shape).astype(np.float32)
        if log:
            expected = g - np.exp(y64) * g.sum(axis=dim, keepdims=True)
        else:
            expected = y64 * (g - (g * y64).sum(axis=dim, keepdims=True))
        assert_close(backward(g, y, dim), expected, "reduction", np.float32)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_is_stable_at_large_magnitudes(isa, rng, log):
    forward = _C.log_softmax if log else _C.softmax
    for scale in (1e2, 1e4, 1e30):
        x = (rng.standard_normal((6, 40)) * scale).astype(np.float32)
        for dim in (0, 1):
            y = forward(x, dim)
            assert np.all(np.isfinite(y) | (log & np.isinf(y)))
            expected = softmax64(x, dim, log)
            np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_softmax_special_rows(isa):
    nan, inf = np.nan, np.inf
    x = np.array([[inf, 1.0], [-inf, -inf], [nan, 1.0], [-inf, 1.0], [1e30, -1e30]],
                 dtype=np.float32)
    # as PyTorch: +inf or NaN or an all -inf row gives NaN everywhere
    expected = [[nan, nan], [nan, nan], [nan, nan], [0, 1], [1, 0]]
    np.testing.assert_array_equal(_C.softmax(x, 1), np.array(expected, np.float32))
    expected = [[nan, nan], [nan, nan], [nan, nan], [-inf, 0], [0, -2e30]]
    np.testing.assert_array_equal(_C.log_softmax(x, 1), np.array(expected, np.float32))
    # the same along a strided dim
    np.testing.assert_array_equal(_C.softmax(np.ascontiguousarray(x.T), 0), _C.softmax(x, 1).T)


def test_zero_dim_and_empty(isa):
    assert _C.softmax(np.full((), 3.0, np.float32), 0) == 1.0
    assert _C.log_softmax(np.ones((), np.float32), -1) == 0.0
    assert _C.softmax(np.zeros((3, 0), np.float32), 1).shape == (3, 0)
    assert _C.sigmoid(np.zeros((0,), np.float32)).shape == (0,)


# ----- out=, in place, and the boundary --------------------------------------------------------

def test_out_and_in_place(rng):
    x = rng.standard_normal((4, 9)).astype(np.float32)
    expected = _C.sigmoid(x)
    out = np.empty_like(x)
    assert _C.sigmoid(x, out) is out
    np.testing.assert_array_equal(out, expected)
    y = x.copy()
    _C.softmax(y, 1, y)
    np.testing.assert_array_equal(y, _C.softmax(x, 1))
    g = x.copy()
    _C.tanh_backward(g, expected, g)
    np.testing.assert_array_equal(g, _C.tanh_backward(x, expected))


X = np.zeros((2, 3), np.float32)
BUFFER = np.zeros(8, np.float32)

BAD_CALLS = [
    (TypeError, lambda: _C.sigmoid(X.astype(np.float64))),
    (TypeError, lambda: _C.gelu(X.astype(np.int64))),
    (TypeError, lambda: _C.tanh([1.0, 2.0])),
    (ValueError, lambda: _C.elu(np.zeros((4, 4), np.float32)[:, ::2], 1.0)),
    (ValueError, lambda: _C.sigmoid(X, np.zeros((3, 2), np.float32))),
    (TypeError, lambda: _C.sigmoid(X, np.zeros((2, 3), np.float64))),
    (ValueError, lambda: _C.sigmoid(BUFFER[:6], BUFFER[1:7])),  # a shifted overlap
    (ValueError, lambda: _C.sigmoid_backward(X, np.zeros((3, 2), np.float32))),
    (ValueError, lambda: _C.gelu_backward(X, np.zeros((2, 4), np.float32))),
    (ValueError, lambda: _C.gelu(X, "fast")),
    (ValueError, lambda: _C.softmax(X, 2)),
    (ValueError, lambda: _C.softmax(X, -3)),
    (ValueError, lambda: _C.log_softmax_backward(X, np.zeros((2, 2), np.float32), 1)),
    (TypeError, lambda: _C.leaky_relu_backward(X, X.astype(np.float16), 0.1)),
]


@pytest.mark.parametrize("error, call", BAD_CALLS, ids=[str(i) for i in range(len(BAD_CALLS))])
def test_inconsistent_arguments_raise(error, call):
    with pytest.raises(error):
        call()


# ----- arrays flush against an inaccessible page -----------------------------------------------

@pytest.mark.parametrize("where", ["end", "start"])
def test_kernels_stay_inside_their_arrays(isa, threads, rng, where):
    # vector loops with a ragged end (partial loads and stores), softmax rows padded with -inf
    # and columns padded to whole vectors: an access one float outside faults here
    from guard_pages import guarded
    for n in (1, 7, 15, 17, 33, 47):
        x = guarded((rng.standard_normal(n) * 4).astype(np.float32), where)
        g = guarded(rng.standard_normal(n).astype(np.float32), where)
        for name in ("gelu", "sigmoid", "tanh"):
            out = guarded(np.zeros(n, np.float32), where)
            getattr(_C, name)(x, out=out)
            assert np.all(np.isfinite(out))
        _C.gelu(x, "tanh", out=guarded(np.zeros(n, np.float32), where))
        _C.gelu_backward(g, x, out=guarded(np.zeros(n, np.float32), where))
        _C.gelu_backward(g, x, "tanh", out=guarded(np.zeros(n, np.float32), where))
    for shape in [(3, 17), (2, 5, 3), (1, 2, 1), (4, 19, 17)]:
        x = guarded((rng.standard_normal(shape) * 4).astype(np.float32), where)
        g = guarded(rng.standard_normal(shape).astype(np.float32), where)
        for dim in range(len(shape)):
            for log in (False, True):
                forward = _C.log_softmax if log else _C.softmax
                backward = _C.log_softmax_backward if log else _C.softmax_backward
                y = forward(x, dim, out=guarded(np.zeros(shape, np.float32), where))
                assert_close(y, softmax64(x, dim, log), "reduction", np.float32)
                backward(g, guarded(y, where), dim, out=guarded(np.zeros(shape, np.float32), where))
