"""convengine.nn.functional pooling: forward and backward against PyTorch (where installed),
float64 gradcheck, unbatched inputs, return_indices with the max_unpool round trip, and errors
that name the op and the argument."""

import numpy as np
import pytest

import convengine as ce
import convengine.nn.functional as F
from conftest import assert_close

# (nd, input shape, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    (1, (2, 3, 37), 3, 2, 1, 1, False),
    (1, (1, 2, 9), 4, 3, 2, 1, True),
    (1, (3, 20), 2, None, 0, 1, False),  # unbatched
    (2, (2, 3, 13, 45), 2, 2, 0, 1, False),
    (2, (1, 2, 17, 38), 3, 2, 1, 1, True),
    (2, (2, 1, 11, 40), (3, 2), (1, 2), (1, 1), 1, False),
    (2, (1, 2, 15, 40), 3, 3, 1, 1, True),
    (2, (2, 2, 16, 30), 3, 2, 1, 2, False),
    (2, (1, 1, 5, 5), 5, 1, 2, 1, False),
    (2, (3, 9, 11), (2, 3), None, (1, 0), 1, True),  # unbatched
    (3, (1, 2, 5, 9, 37), 2, 2, 0, 1, False),
    (3, (2, 1, 6, 7, 20), 3, (1, 2, 2), 1, 1, True),
    (3, (1, 4, 5, 6), (1, 3, 3), (1, 2, 1), (0, 1, 1), (1, 1, 2), False),  # unbatched
]

# (nd, input shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override)
AVG_CASES = [
    (1, (2, 3, 37), 3, 2, 1, False, True, None),
    (1, (1, 2, 29), 4, 3, 2, True, False, None),
    (2, (2, 3, 13, 45), 2, 2, 0, False, True, None),
    (2, (1, 2, 17, 38), 3, 2, 1, True, False, None),
    (2, (1, 2, 17, 38), 3, 2, 1, True, True, None),
    (2, (1, 3, 12, 30), 3, 1, 1, False, True, 7),
    (2, (3, 9, 11), (2, 3), (3, 2), (1, 0), True, True, None),  # unbatched
    (3, (1, 2, 5, 9, 17), 2, 2, 0, False, True, None),
    (3, (2, 1, 6, 7, 20), 3, (1, 2, 2), 1, True, False, 5),
]

# (nd, input shape, output_size)
ADAPTIVE_CASES = [
    (1, (2, 3, 10), 4),
    (1, (1, 1, 5), 8),
    (2, (2, 3, 10, 13), (3, 5)),
    (2, (1, 2, 7, 7), 1),
    (2, (2, 9, 31), (4, None)),  # unbatched, None keeps the input size
    (2, (2, 2, 8, 40), (4, 20)),
    (3, (1, 2, 5, 6, 7), (2, 3, 4)),
    (3, (1, 1, 3, 5, 2), (4, None, 3)),
]


def torch_or_skip():
    return pytest.importorskip("torch")


def ce_input(rng, shape, dtype=np.float32, special=False):
    x = rng.standard_normal(shape).astype(dtype)
    if special:
        flat = x.reshape(-1)
        flat[rng.choice(flat.size, max(1, flat.size // 40), replace=False)] = np.nan
        flat[rng.choice(flat.size, max(1, flat.size // 40), replace=False)] = -np.inf
        flat[rng.choice(flat.size, max(1, flat.size // 10), replace=False)] = 0.25
    return ce.tensor(x, requires_grad=True)


def pool_fn(name, nd):
    return getattr(F, f"{name}{nd}d")


def torch_pair(torch, x):
    """A torch leaf with x's values (and its grad later)."""
    return torch.tensor(x.data, requires_grad=True)


def compare_backward(torch, ours, theirs, x, tx, rng):
    grad = rng.standard_normal(ours.shape).astype(ours.dtype)
    ours.backward(grad)
    theirs.backward(torch.from_numpy(grad))
    assert_close(x.grad.data, tx.grad.numpy(), "vs_torch")


# ----- against PyTorch -------------------------------------------------------------------------

@pytest.mark.parametrize("special", [False, True], ids=["finite", "nan_inf_ties"])
def test_max_pool_matches_torch(rng, special):
    torch = torch_or_skip()
    for nd, shape, kernel, stride, pad, dil, ceil in MAX_CASES:
        x = ce_input(rng, shape, special=special)
        tx = torch_pair(torch, x)
        out, idx = pool_fn("max_pool", nd)(x, kernel, stride, pad, dil, ceil, True)
        tout, tidx = getattr(torch.nn.functional, f"max_pool{nd}d")(tx, kernel, stride, pad, dil,
                                                                    ceil, True)
        case = (nd, shape, kernel, stride, pad, dil, ceil)
        np.testing.assert_array_equal(out.data, tout.detach().numpy(), err_msg=str(case))
        np.testing.assert_array_equal(idx.data, tidx.numpy(), err_msg=str(case))
        assert idx.dtype == np.int64 and not idx.requires_grad
        if not special:
            compare_backward(torch, out, tout, x, tx, rng)
        # without return_indices: the same values
        values_only = pool_fn("max_pool", nd)(x, kernel, stride, pad, dil, ceil)
        np.testing.assert_array_equal(values_only.data, out.data)


def test_avg_pool_matches_torch(rng):
    torch = torch_or_skip()
    for nd, shape, kernel, stride, pad, ceil, cip, div in AVG_CASES:
        x = ce_input(rng, shape)
        tx = torch_pair(torch, x)
        extra = {} if nd == 1 else {"divisor_override": div}
        out = pool_fn("avg_pool", nd)(x, kernel, stride, pad, ceil, cip, **extra)
        tout = getattr(torch.nn.functional, f"avg_pool{nd}d")(tx, kernel, stride, pad, ceil, cip,
                                                              **extra)
        assert_close(out.data, tout.detach().numpy(), "vs_torch")
        compare_backward(torch, out, tout, x, tx, rng)


@pytest.mark.parametrize("special", [False, True], ids=["finite", "nan_inf_ties"])
def test_adaptive_pools_match_torch(rng, special):
    torch = torch_or_skip()
    tf = torch.nn.functional
    for nd, shape, size in ADAPTIVE_CASES:
        x = ce_input(rng, shape, special=special)
        tx = torch_pair(torch, x)
        out = pool_fn("adaptive_avg_pool", nd)(x, size)
        tout = getattr(tf, f"adaptive_avg_pool{nd}d")(tx, size)
        assert_close(out.data, tout.detach().numpy(), "vs_torch")
        if not special:
            compare_backward(torch, out, tout, x, tx, rng)
        x.grad, tx.grad = None, None
        out, idx = pool_fn("adaptive_max_pool", nd)(x, size, True)
        tout, tidx = getattr(tf, f"adaptive_max_pool{nd}d")(tx, size, True)
        np.testing.assert_array_equal(out.data, tout.detach().numpy(), err_msg=str(shape))
        np.testing.assert_array_equal(idx.data, tidx.numpy(), err_msg=str(shape))
        if not special:
            compare_backward(torch, out, tout, x, tx, rng)


def test_max_unpool_round_trip_matches_torch(rng):
    torch = torch_or_skip()
    tf = torch.nn.functional
    for nd, shape, kernel, stride, output_size in [
            (1, (2, 3, 12), 2, 2, None), (1, (1, 2, 13), 3, 2, (13,)),
            (2, (2, 3, 10, 12), 2, None, None), (2, (1, 2, 11, 13), 3, 2, (1, 2, 11, 13)),
            (2, (3, 8, 9), 2, 2, (8, 9)), (3, (1, 2, 4, 6, 8), 2, 2, None)]:
        x = ce_input(rng, shape)
        pooled, idx = pool_fn("max_pool", nd)(x, kernel, stride, 0, 1, False, True)
        pooled = ce.tensor(pooled.data, requires_grad=True)
        tpooled = torch_pair(torch, pooled)
        out = pool_fn("max_unpool", nd)(pooled, idx, kernel, stride, 0, output_size)
        tout = getattr(tf, f"max_unpool{nd}d")(tpooled, torch.from_numpy(idx.data), kernel,
                                               stride, 0, output_size)
        np.testing.assert_array_equal(out.data, tout.detach().numpy())
        if output_size is not None:
            assert out.shape[-nd:] == tuple(output_size)[-nd:]
        compare_backward(torch, out, tout, pooled, tpooled, rng)
        if out.shape == x.shape:  # the round trip puts each window's maximum back in place
            kept = out.data != 0
            np.testing.assert_array_equal(out.data[kept], x.data[kept])


def test_float64_matches_torch(rng):
    torch = torch_or_skip()
    tf = torch.nn.functional
    x = ce_input(rng, (2, 3, 9, 11), np.float64)
    tx = torch_pair(torch, x)
    calls = [lambda f, t: f.max_pool2d(t, 3, 2, 1, ceil_mode=True),
             lambda f, t: f.avg_pool2d(t, 3, 2, 1, True, False),
             lambda f, t: f.adaptive_avg_pool2d(t, (4, 5)),
             lambda f, t: f.adaptive_max_pool2d(t, (4, 5))]
    for call in calls:
        ours, theirs = (lambda t, c=call: c(F, t)), (lambda t, c=call: c(tf, t))
        x.grad, tx.grad = None, None
        out, tout = ours(x), theirs(tx)
        assert out.dtype == np.float64
        assert_close(out.data, tout.detach().numpy(), "vs_torch")
        compare_backward(torch, out, tout, x, tx, rng)


# ----- float64 gradcheck (no torch needed) -----------------------------------------------------

GRADCHECK = [
    ("max_pool1d", (1, 2, 9), lambda t: F.max_pool1d(t, 3, 2, 1, 2, True)),
    ("max_pool2d", (1, 2, 5, 6), lambda t: F.max_pool2d(t, 3, 2, 1, ceil_mode=True)),
    ("max_pool3d", (1, 1, 3, 4, 5), lambda t: F.max_pool3d(t, 2, (1, 2, 2), 1)),
    ("avg_pool1d", (1, 2, 9), lambda t: F.avg_pool1d(t, 3, 2, 1, True, False)),
    ("avg_pool2d", (1, 2, 5, 6), lambda t: F.avg_pool2d(t, 3, 2, 1, True, True, 4)),
    ("avg_pool3d", (1, 1, 3, 4, 5), lambda t: F.avg_pool3d(t, 2, 1, 1, False, False)),
    ("adaptive_avg_pool2d", (1, 2, 5, 7), lambda t: F.adaptive_avg_pool2d(t, (3, 4))),
    ("adaptive_avg_pool3d", (1, 1, 3, 4, 5), lambda t: F.adaptive_avg_pool3d(t, (2, 3, 3))),
    ("adaptive_max_pool1d", (2, 7), lambda t: F.adaptive_max_pool1d(t, 3)),
    ("adaptive_max_pool2d", (1, 2, 5, 7), lambda t: F.adaptive_max_pool2d(t, (3, 4))),
    ("max_unpool2d", (1, 2, 2, 3),
     lambda t: F.max_unpool2d(t, ce.tensor(np.array([[[[0, 3, 5], [13, 8, 23]],
                                                       [[6, 2, 10], [12, 21, 17]]]])), 2)),
]


@pytest.mark.parametrize("name, shape, fn", GRADCHECK, ids=[g[0] for g in GRADCHECK])
def test_gradcheck_float64(rng, name, shape, fn):
    # distinct, well separated values: no ties for max pooling to break differently
    values = rng.permutation(np.prod(shape)).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)
    x = ce.tensor(values.astype(np.float64), requires_grad=True)
    assert ce.gradcheck(fn, [x])


def test_float32_gradient_matches_float64_path(rng):
    x64 = ce.tensor(rng.standard_normal((2, 3, 9, 10)), requires_grad=True)
    x32 = ce.tensor(x64.data.astype(np.float32), requires_grad=True)
    for fn in (lambda t: F.max_pool2d(t, 3, 2, 1), lambda t: F.avg_pool2d(t, 3, 2, 1, True),
               lambda t: F.adaptive_avg_pool2d(t, (4, 3)), lambda t: F.adaptive_max_pool2d(t, 4)):
        x64.grad = x32.grad = None
        out64, out32 = fn(x64), fn(x32)
        assert out32.dtype == np.float32
        assert_close(out32.data, out64.data.astype(np.float32), "vs_torch")
        grad = rng.standard_normal(out64.shape)
        out64.backward(grad)
        out32.backward(grad.astype(np.float32))
        assert_close(x32.grad.data, x64.grad.data.astype(np.float32), "vs_torch")


def test_backward_saves_only_indices():
    x = ce.randn(1, 2, 6, 6, requires_grad=True)
    out = F.max_pool2d(x, 2)
    assert out.grad_fn.indices.dtype == np.int64
    assert not any(isinstance(v, np.ndarray) and v.dtype == np.float32
                   for v in vars(out.grad_fn).values())
    no_grad_out = F.max_pool2d(ce.randn(1, 2, 6, 6), 2)
    assert no_grad_out.grad_fn is None


def test_unbatched_equals_batched(rng):
    x = rng.standard_normal((3, 10, 12)).astype(np.float32)
    out, idx = F.max_pool2d(ce.tensor(x), 3, 2, 1, return_indices=True)
    bout, bidx = F.max_pool2d(ce.tensor(x[None]), 3, 2, 1, return_indices=True)
    np.testing.assert_array_equal(out.data, bout.data[0])
    np.testing.assert_array_equal(idx.data, bidx.data[0])
    np.testing.assert_array_equal(F.max_unpool2d(out, idx, 3, 2, 1, (10, 12)).data,
                                  F.max_unpool2d(bout, bidx, 3, 2, 1, (10, 12)).data[0])


def test_empty_batch():
    x = ce.zeros(0, 3, 8, 8, requires_grad=True)
    for fn in (lambda t: F.max_pool2d(t, 2), lambda t: F.avg_pool2d(t, 3, 2, 1),
               lambda t: F.adaptive_avg_pool2d(t, 3), lambda t: F.adaptive_max_pool2d(t, 1)):
        x.grad = None
        out = fn(x)
        assert out.shape[:2] == (0, 3)
        out.sum().backward()
        assert x.grad.shape == x.shape
    pooled, idx = F.max_pool2d(x, 2, return_indices=True)
    assert F.max_unpool2d(pooled, idx, 2).shape == (0, 3, 8, 8)


# ----- errors name the op and the argument ------------------------------------------------------

X4 = ce.zeros(1, 2, 6, 6)
P3 = ce.zeros(1, 2, 3, 3)  # a pooled tensor for max_unpool2d


def int64(*shape, fill=0):
    return ce.full(shape, fill, dtype=np.int64)


ERRORS = [
    (ValueError, "max_pool2d.*'input'", lambda: F.max_pool2d(ce.zeros(6, 6), 2)),
    (ValueError, "max_pool1d.*'input'", lambda: F.max_pool1d(X4, 2)),
    (TypeError, "max_pool2d.*'input'.*int64", lambda: F.max_pool2d(int64(1, 1, 4, 4), 2)),
    (ValueError, "max_pool2d.*'kernel_size'", lambda: F.max_pool2d(X4, 0)),
    (TypeError, "max_pool2d.*'kernel_size'", lambda: F.max_pool2d(X4, 2.5)),
    (ValueError, "max_pool2d.*'kernel_size'", lambda: F.max_pool2d(X4, (2, 2, 2))),
    (ValueError, "max_pool2d.*'stride'", lambda: F.max_pool2d(X4, 2, 0)),
    (ValueError, "max_pool2d.*'padding'", lambda: F.max_pool2d(X4, 2, 1, 2)),
    (ValueError, "max_pool2d.*'padding'", lambda: F.max_pool2d(X4, 3, 1, -1)),
    (ValueError, "max_pool2d.*'dilation'", lambda: F.max_pool2d(X4, 2, 1, 0, 0)),
    (ValueError, "max_pool2d.*output size", lambda: F.max_pool2d(X4, 7)),
    (ValueError, "max_pool3d.*output size", lambda: F.max_pool3d(ce.zeros(1, 1, 2, 8, 8), 3)),
    (ValueError, "avg_pool2d.*'padding'", lambda: F.avg_pool2d(X4, 3, 1, 2)),
    (ValueError, "avg_pool2d.*'divisor_override'",
     lambda: F.avg_pool2d(X4, 2, divisor_override=0)),
    (TypeError, "avg_pool2d.*'divisor_override'",
     lambda: F.avg_pool2d(X4, 2, divisor_override=1.5)),
    (ValueError, "avg_pool1d.*output size", lambda: F.avg_pool1d(ce.zeros(1, 1, 3), 4)),
    (ValueError, "adaptive_avg_pool2d.*'output_size'", lambda: F.adaptive_avg_pool2d(X4, 0)),
    (ValueError, "adaptive_max_pool2d.*'output_size'",
     lambda: F.adaptive_max_pool2d(X4, (2, -1))),
    (ValueError, "adaptive_avg_pool3d.*'output_size'",
     lambda: F.adaptive_avg_pool3d(ce.zeros(1, 1, 2, 2, 2), (1, 1))),
    (ValueError, "adaptive_avg_pool2d.*'input'",
     lambda: F.adaptive_avg_pool2d(ce.zeros(1, 0, 4, 4), 2)),
    (ValueError, "max_unpool2d.*'indices'", lambda: F.max_unpool2d(P3, int64(1, 2, 3, 2), 2)),
    (TypeError, "max_unpool2d.*'indices'", lambda: F.max_unpool2d(P3, ce.zeros(1, 2, 3, 3), 2)),
    (ValueError, "max_unpool2d.*'output_size'",
     lambda: F.max_unpool2d(P3, int64(1, 2, 3, 3), 2, output_size=(9, 6))),
    (ValueError, "max_unpool2d.*'indices'",
     lambda: F.max_unpool2d(P3, int64(1, 2, 3, 3, fill=36), 2)),
]


@pytest.mark.parametrize("error, match, call", ERRORS, ids=[str(i) for i in range(len(ERRORS))])
def test_bad_arguments_raise_naming_op_and_argument(error, match, call):
    with pytest.raises(error, match=match):
        call()
