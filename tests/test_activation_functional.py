"""convengine.nn.functional activations: forward and backward against PyTorch (where installed),
float64 gradcheck, softmax along every dim, PyTorch's dim=None and dtype= rules, in-place use,
and errors that name the op and the argument."""

import numpy as np
import pytest

import convengine as ce
import convengine.nn.functional as F
from conftest import assert_close

SPECIAL = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e30, -1e30, 50.0, -50.0, 1e-40],
                   dtype=np.float32)

# name -> (ours, torch's), both called as fn(F, x)
ACTIVATIONS = {
    "relu": lambda f, x: f.relu(x),
    "leaky_relu": lambda f, x: f.leaky_relu(x),
    "leaky_relu_0.2": lambda f, x: f.leaky_relu(x, 0.2),
    "elu": lambda f, x: f.elu(x),
    "elu_alpha": lambda f, x: f.elu(x, 0.7),
    "gelu": lambda f, x: f.gelu(x),
    "gelu_tanh": lambda f, x: f.gelu(x, approximate="tanh"),
    "sigmoid": lambda f, x: f.sigmoid(x),
    "tanh": lambda f, x: f.tanh(x),
}


def torch_or_skip():
    return pytest.importorskip("torch")


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_activation_matches_torch(rng, name):
    torch = torch_or_skip()
    fn = ACTIVATIONS[name]
    values = np.concatenate([rng.standard_normal(997) * 4, np.linspace(-10, 10, 1001)])
    x = ce.tensor(values.astype(np.float32).reshape(2, 999), requires_grad=True)
    grad = rng.standard_normal(x.shape).astype(np.float32)
    out = fn(F, x)
    out.backward(grad)
    # torch in float64 on the same float32 inputs is the accurate answer; torch's own float32
    # tanh-GELU cancels in 1 + tanh(u) and 1 - tanh(u)^2 (errors up to 2e-6 near x = -5)
    for dtype, out_kind, grad_kind in ((torch.float64, "vs_torch", "activation_grad"),
                                       (torch.float32, "vs_torch_activation",
                                        "vs_torch_activation")):
        tx = torch.tensor(x.data, dtype=dtype, requires_grad=True)
        tout = fn(torch.nn.functional, tx)
        tout.backward(torch.from_numpy(grad).to(dtype))
        assert_close(out.data, tout.detach().numpy().astype(np.float32), out_kind)
        assert_close(x.grad.data, tx.grad.numpy().astype(np.float32), grad_kind)


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_special_values_match_torch(name):
    torch = torch_or_skip()
    fn = ACTIVATIONS[name]
    ours = fn(F, ce.tensor(SPECIAL)).data
    theirs = fn(torch.nn.functional, torch.from_numpy(SPECIAL)).numpy()
    if name.startswith("gelu"):
        # PyTorch's exact GELU gives NaN at +inf and overflows at 3.4e38; we give x * 1
        theirs = np.where(np.isposinf(SPECIAL), np.inf, theirs)
    np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("log", [False, True], ids=["softmax", "log_softmax"])
def test_softmax_matches_torch_along_every_dim(rng, log):
    torch = torch_or_skip()
    name = "log_softmax" if log else "softmax"
    x = ce.tensor((rng.standard_normal((2, 3, 4, 5)) * 5).astype(np.float32), requires_grad=True)
    tx = torch.tensor(x.data, requires_grad=True)
    for dim in (0, 1, 2, 3, -1, -3):
        x.grad, tx.grad = None, None
        out = getattr(F, name)(x, dim)
        tout = getattr(torch.nn.functional, name)(tx, dim)
        assert_close(out.data, tout.detach().numpy(), "vs_torch")
        grad = rng.standard_normal(out.shape).astype(np.float32)
        out.backward(grad)
        tout.backward(torch.from_numpy(grad))
        assert_close(x.grad.data, tx.grad.numpy(), "vs_torch")


def test_softmax_large_magnitudes_match_torch(rng):
    torch = torch_or_skip()
    for scale in (1e3, 1e6, 1e30):
        x = (rng.standard_normal((4, 50)) * scale).astype(np.float32)
        for name in ("softmax", "log_softmax"):
            for dim in (0, 1):
                out = getattr(F, name)(ce.tensor(x), dim).data
                tout = getattr(torch.nn.functional, name)(torch.from_numpy(x), dim).numpy()
                assert np.all(np.isfinite(out)) or name == "log_softmax"
                np.testing.assert_allclose(out, tout, rtol=1e-5, atol=1e-6)


def test_float64_matches_torch(rng):
    torch = torch_or_skip()
    x = ce.tensor(rng.standard_normal((3, 7)) * 3, requires_grad=True)
    tx = torch.tensor(x.data, requires_grad=True)
    for name, fn in ACTIVATIONS.items():
        x.grad, tx.grad = None, None
        out, tout = fn(F, x), fn(torch.nn.functional, tx)
        assert out.dtype == np.float64
        assert_close(out.data, tout.detach().numpy(), "vs_torch")
        out.backward(np.ones(out.shape))
        tout.backward(torch.ones(out.shape, dtype=torch.float64))
        assert_close(x.grad.data, tx.grad.numpy(), "vs_torch")


# ----- float64 gradcheck (no torch needed) -----------------------------------------------------

GRADCHECK = dict(ACTIVATIONS)
GRADCHECK.update({
    "softmax_dim0": lambda f, x: f.softmax(x, 0),
    "softmax_dim1": lambda f, x: f.softmax(x, 1),
    "log_softmax_dim0": lambda f, x: f.log_softmax(x, 0),
    "log_softmax_dim-1": lambda f, x: f.log_softmax(x, -1),
})


@pytest.mark.parametrize("name", sorted(GRADCHECK))
def test_gradcheck_float64(rng, name):
    values = rng.uniform(-3, 3, (3, 4))
    values[np.abs(values) < 0.05] = 0.5  # away from relu's and leaky_relu's kink
    x = ce.tensor(values, requires_grad=True)
    assert ce.gradcheck(lambda t: GRADCHECK[name](F, t), [x])


def test_float32_backward_matches_float64(rng):
    values = rng.standard_normal((4, 33)) * 3
    for name, fn in GRADCHECK.items():
        x64 = ce.tensor(values, requires_grad=True)
        x32 = ce.tensor(values.astype(np.float32), requires_grad=True)
        out64, out32 = fn(F, x64), fn(F, x32)
        assert out32.dtype == np.float32
        assert_close(out32.data, out64.data, "vs_torch", np.float32)
        grad = rng.standard_normal(out64.shape)
        out64.backward(grad)
        out32.backward(grad.astype(np.float32))
        assert_close(x32.grad.data, x64.grad.data, "activation_grad", np.float32)


# ----- PyTorch's rules: dim=None, dtype=, inplace, non-contiguous input --------------------------

def test_softmax_implicit_dim_warns_and_follows_torch():
    x = ce.randn(2, 3, 4)
    with pytest.warns(UserWarning, match="Implicit dimension"):
        out = F.softmax(x)
    np.testing.assert_allclose(out.data.sum(axis=0), 1, rtol=1e-6)  # 3-D: dim 0
    with pytest.warns(UserWarning):
        out = F.log_softmax(ce.randn(2, 3, 4, 5))
    np.testing.assert_allclose(np.exp(out.data).sum(axis=1), 1, rtol=1e-5)  # 4-D: dim 1


def test_softmax_dtype_casts_first():
    x = ce.tensor(np.arange(6).reshape(2, 3))
    out = F.softmax(x, 1, dtype=np.float64)
    assert out.dtype == np.float64
    y = F.log_softmax(ce.randn(2, 3), 1, dtype=ce.float64)
    assert y.dtype == np.float64


def test_inplace_writes_into_the_input():
    x = ce.tensor(np.array([-2.0, 3.0], np.float32))
    assert F.leaky_relu(x, 0.5, inplace=True) is x
    np.testing.assert_array_equal(x.data, [-1.0, 3.0])
    with pytest.raises(RuntimeError, match="elu.*inplace"):
        F.elu(ce.randn(3, requires_grad=True), inplace=True)


def test_non_contiguous_input(rng):
    base = rng.standard_normal((6, 8)).astype(np.float32)
    x = ce.tensor(base).transpose(0, 1)
    np.testing.assert_allclose(F.sigmoid(x).data, 1 / (1 + np.exp(-base.T)), rtol=1e-6)
    np.testing.assert_allclose(F.softmax(x, 0).data.sum(axis=0), 1, rtol=1e-6)


ERRORS = [
    (TypeError, "sigmoid.*'input'.*int64", lambda: F.sigmoid(ce.tensor(np.arange(3)))),
    (TypeError, "gelu.*'input'", lambda: F.gelu(ce.tensor(np.array([True])))),
    (ValueError, "gelu.*'approximate'", lambda: F.gelu(ce.randn(3), approximate="erf")),
    (TypeError, "leaky_relu.*'negative_slope'", lambda: F.leaky_relu(ce.randn(3), "0.1")),
    (TypeError, "elu.*'alpha'", lambda: F.elu(ce.randn(3), None)),
    (ValueError, "softmax.*'dim'", lambda: F.softmax(ce.randn(2, 3), 2)),
    (ValueError, "log_softmax.*'dim'", lambda: F.log_softmax(ce.randn(2, 3), -3)),
    (TypeError, "softmax.*'dim'", lambda: F.softmax(ce.randn(2, 3), 1.0)),
]


@pytest.mark.parametrize("error, match, call", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_bad_arguments_raise_naming_op_and_argument(error, match, call):
    with pytest.raises(error, match=match):
        call()
