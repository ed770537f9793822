"""Every differentiable operation, forward and backward.

One table (OPS) drives three tests:
- against PyTorch, float32 and float64, forward values and input gradients for a random
  upstream gradient (skipped without torch);
- convengine.gradcheck in float64 (torch-free);
then the ops that run compiled kernels are checked under every kernel variant against the
pure NumPy path, and bad input is checked to raise errors that name the op and the shapes.

A case's fn takes the module (convengine or torch) and the input tensors, so one lambda
describes both sides: `lambda m, a, b: m.cat([a, b], dim=1)`.
"""

import collections
import re
import zlib

import numpy as np
import pytest

import convengine as ce
from conftest import assert_close, tolerance

F = ce.nn.functional


def _rng(*key):
    # stable across runs (str hashing is randomised per process)
    return np.random.default_rng(zlib.crc32(repr(key).encode()))


# ----- input specs: a shape means standard normal values; these wrap a shape for a domain ----
def pos(*shape):
    """Values in [0.5, 2): for log, sqrt, a tensor exponent's base."""
    return ("pos", shape)


def away0(*shape):
    """|values| in [0.5, 2): divisors, abs, negative powers."""
    return ("away0", shape)


def make_array(spec, dtype, rng):
    kind, shape = spec if spec and isinstance(spec[0], str) else ("normal", spec)
    if kind == "normal":
        values = rng.standard_normal(shape)
    else:
        values = rng.uniform(0.5, 2.0, shape)
        if kind == "away0":
            values *= rng.choice([-1.0, 1.0], shape)
    return np.asarray(values, dtype=dtype)


Op = collections.namedtuple("Op", "fn inputs torch_fn gradcheck")


def op(name, fn, *inputs, torch_fn=None, gradcheck=True):
    """One row of OPS: fn(module, *tensors) -> tensor or tuple of tensors."""
    return pytest.param(Op(fn, inputs, torch_fn, gradcheck), id=name)


OPS = [
    # ----- arithmetic, with broadcasting and Python scalars -----
    op("add", lambda m, a, b: a + b, (3, 4), (3, 4)),
    op("add-bcast-trailing", lambda m, a, b: a + b, (2, 3, 4), (4,)),
    op("add-bcast-both", lambda m, a, b: m.add(a, b), (3, 1), (1, 4)),
    op("add-bcast-3d", lambda m, a, b: a + b, (2, 1, 4), (3, 1)),
    op("add-scalar", lambda m, a: a + 2.5, (3, 4)),
    op("radd-scalar", lambda m, a: 2.5 + a, (3, 4)),
    op("sub", lambda m, a, b: a - b, (3, 4), (3, 4)),
    op("sub-bcast", lambda m, a, b: m.sub(a, b), (4,), (2, 3, 1)),
    op("rsub-scalar", lambda m, a: 1.0 - a, (2, 3)),
    op("mul", lambda m, a, b: a * b, (3, 4), (3, 4)),
    op("mul-bcast", lambda m, a, b: m.mul(a, b), (2, 1, 4), (3, 4)),
    op("mul-scalar", lambda m, a: a * -1.5, (5,)),
    op("mul-self-twice", lambda m, a: a * a * a, (5,)),
    op("div", lambda m, a, b: a / b, (3, 4), away0(3, 4)),
    op("div-bcast", lambda m, a, b: m.div(a, b), (2, 3, 4), away0(3, 1)),
    op("div-scalar", lambda m, a: a / 4.0, (3,)),
    op("rdiv-scalar", lambda m, a: 2.0 / a, away0(2, 3)),
    op("pow-tensor", lambda m, a, b: a ** b, pos(3, 4), (3, 4)),
    op("pow-tensor-bcast", lambda m, a, b: m.pow(a, b), pos(2, 3), (3,)),
    op("pow-2", lambda m, a: a ** 2, (3, 4)),
    op("pow-3", lambda m, a: m.pow(a, 3), (3, 4)),
    op("pow-0", lambda m, a: a ** 0, (4,)),
    op("pow-half", lambda m, a: a ** 0.5, pos(3, 4)),
    op("pow-neg", lambda m, a: a ** -1.5, pos(3, 4)),
    op("pow-int-neg", lambda m, a: a ** -2, away0(3, 4)),
    op("rpow-scalar-base", lambda m, a: 2.0 ** a, (3, 4)),
    op("pow-scalar-base-functional", lambda m, a: m.pow(1.5, a), (3, 4)),
    op("neg", lambda m, a: -a, (3, 4)),
    op("neg-functional", lambda m, a: m.neg(a), (3, 4)),
    # ----- matmul: every rank combination -----
    op("matmul-1d-1d", lambda m, a, b: a @ b, (3,), (3,)),
    op("matmul-1d-2d", lambda m, a, b: a @ b, (3,), (3, 4)),
    op("matmul-2d-1d", lambda m, a, b: a @ b, (3, 4), (4,)),
    op("matmul-2d-2d", lambda m, a, b: m.matmul(a, b), (3, 4), (4, 5)),
    op("matmul-3d-2d", lambda m, a, b: a @ b, (2, 3, 4), (4, 5)),
    op("matmul-2d-3d", lambda m, a, b: a @ b, (3, 4), (2, 4, 2)),
    op("matmul-batch-bcast", lambda m, a, b: a @ b, (2, 1, 3, 4), (3, 4, 2)),
    op("matmul-1d-3d", lambda m, a, b: a @ b, (4,), (2, 4, 3)),
    op("matmul-3d-1d", lambda m, a, b: a @ b, (2, 3, 4), (4,)),
    # ----- element-wise functions -----
    op("exp", lambda m, a: a.exp(), (3, 4)),
    op("exp-functional", lambda m, a: m.exp(a), (2, 3)),
    op("log", lambda m, a: a.log(), pos(3, 4)),
    op("log-functional", lambda m, a: m.log(a), pos(5,)),
    op("sqrt", lambda m, a: a.sqrt(), pos(3, 4)),
    op("sqrt-functional", lambda m, a: m.sqrt(a), pos(5,)),
    op("abs", lambda m, a: a.abs(), away0(3, 4)),
    op("abs-builtin", lambda m, a: abs(a), away0(3, 4)),
    op("abs-functional", lambda m, a: m.abs(a), away0(3, 4)),
    op("clamp-min", lambda m, a: a.clamp(min=-0.3), (3, 4)),
    op("clamp-max", lambda m, a: a.clamp(max=0.2), (3, 4)),
    op("clamp-both", lambda m, a: m.clamp(a, -0.5, 0.5), (3, 4)),
    op("clip", lambda m, a: a.clip(-0.5, 0.5), (3, 4)),
    op("clip-functional", lambda m, a: m.clip(a, max=0.1), (3, 4)),
    op("relu", lambda m, a: a.relu(), (3, 4)),
    op("relu-functional", lambda m, a: m.relu(a), (3, 4)),
    op("relu-nn-functional", lambda m, a: m.nn.functional.relu(a), (3, 4)),
    op("where", lambda m, a, b: m.where(a > 0, a, b), (3, 4), (3, 4)),
    op("where-bcast", lambda m, a, b: m.where(a > 0, a, b), (3, 4), (4,)),
    op("where-cond-bcast", lambda m, a, b: m.where(b > 0, a, b), (2, 3, 4), (3, 1)),
    op("where-scalar", lambda m, a: m.where(a > 0, a, 0.5), (3, 4)),
    # ----- reductions -----
    op("sum-all", lambda m, a: a.sum(), (3, 4)),
    op("sum-dim", lambda m, a: a.sum(1), (2, 3, 4)),
    op("sum-dim-neg", lambda m, a: a.sum(-1), (2, 3, 4)),
    op("sum-dims", lambda m, a: a.sum((0, 2)), (2, 3, 4)),
    op("sum-keepdim", lambda m, a: a.sum(1, keepdim=True), (2, 3, 4)),
    op("sum-dims-keepdim", lambda m, a: m.sum(a, (0, -1), keepdim=True), (2, 3, 4)),
    op("mean-all", lambda m, a: a.mean(), (3, 4)),
    op("mean-dim", lambda m, a: a.mean(0), (3, 4)),
    op("mean-dims-keepdim", lambda m, a: m.mean(a, (1, 2), keepdim=True), (2, 3, 4)),
    op("mean-dim-neg", lambda m, a: a.mean(-2), (2, 3, 4)),
    op("var-all", lambda m, a: a.var(), (3, 4)),
    op("var-all-correction0", lambda m, a: a.var(correction=0), (3, 4)),
    op("var-all-correction2", lambda m, a: a.var(correction=2), (3, 4)),
    op("var-dim", lambda m, a: a.var(1), (2, 3, 4)),
    op("var-dims-keepdim", lambda m, a: m.var(a, (0, 2), keepdim=True), (2, 3, 4)),
    op("var-dim-neg-correction0", lambda m, a: a.var(-1, correction=0), (2, 3, 4)),
    op("var-unbiased-false", lambda m, a: a.var(1, unbiased=False), (3, 4)),
    op("var-unbiased-true", lambda m, a: a.var(0, unbiased=True, keepdim=True), (3, 4)),
    op("max-all", lambda m, a: a.max(), (3, 4)),
    op("min-all", lambda m, a: m.min(a), (3, 4)),
    op("max-dim", lambda m, a: a.max(1), (2, 3, 4)),
    op("max-dim-keepdim", lambda m, a: a.max(0, keepdim=True), (3, 4)),
    op("min-dim-neg", lambda m, a: a.min(-1), (2, 3, 4)),
    op("min-dim-keepdim-functional", lambda m, a: m.min(a, 1, keepdim=True), (3, 4)),
    # ----- shape -----
    op("reshape", lambda m, a: a.reshape(4, 3), (3, 4)),
    op("reshape-tuple-infer", lambda m, a: a.reshape((2, -1)), (3, 4)),
    op("reshape-flat", lambda m, a: m.reshape(a, (-1,)), (2, 3, 2)),
    op("view", lambda m, a: a.view(2, 6), (3, 4)),
    op("flatten", lambda m, a: a.flatten(), (2, 3, 4)),
    op("flatten-start", lambda m, a: a.flatten(1), (2, 3, 4)),
    op("flatten-range", lambda m, a: m.flatten(a, 0, 1), (2, 3, 4)),
    op("permute", lambda m, a: a.permute(2, 0, 1), (2, 3, 4)),
    op("permute-tuple", lambda m, a: m.permute(a, (1, 0, 2)), (2, 3, 4)),
    op("transpose", lambda m, a: a.transpose(0, 2), (2, 3, 4)),
    op("transpose-neg", lambda m, a: m.transpose(a, -1, -2), (2, 3, 4)),
    op("T", lambda m, a: a.T, (3, 4)),
    op("squeeze-all", lambda m, a: a.squeeze(), (1, 3, 1, 4)),
    op("squeeze-dim", lambda m, a: a.squeeze(0), (1, 3, 1, 4)),
    op("squeeze-dim-neg", lambda m, a: m.squeeze(a, -2), (1, 3, 1, 4)),
    op("squeeze-not-one", lambda m, a: a.squeeze(1), (1, 3, 1, 4)),
    op("unsqueeze", lambda m, a: a.unsqueeze(0), (3, 4)),
    op("unsqueeze-neg", lambda m, a: m.unsqueeze(a, -1), (3, 4)),
    # ----- indexing and slicing -----
    op("index-int", lambda m, a: a[1], (3, 4)),
    op("index-neg-int", lambda m, a: a[-1, 2], (3, 4)),
    op("slice", lambda m, a: a[:, 1:3], (3, 4)),
    op("slice-step", lambda m, a: a[..., ::2], (2, 3, 5)),
    op("slice-none", lambda m, a: a[1:, None, :2], (3, 4)),
    op("slice-neg-step", lambda m, a: a[::-1, 1::-1], (3, 4),
       torch_fn=lambda m, a: a.flip(0)[:, :2].flip(1)),
    op("advanced-repeats", lambda m, a: a[[0, 2, 0, 0]], (3, 4)),
    op("advanced-pairs-repeats", lambda m, a: a[[0, 0, 1, 2], [1, 1, 3, 1]], (3, 4)),
    op("advanced-with-slice", lambda m, a: a[:, [3, 0, 3]], (2, 4)),
    # PyTorch applies integers before arrays (NumPy would put the array's dim first here)
    op("int-slice-array", lambda m, a: a[0, :, [0, 0, 3]], (2, 3, 4)),
    op("array-slice-int", lambda m, a: a[[1, 0, 1], :, -1], (2, 3, 4)),
    op("int-none-slice-array", lambda m, a: a[-1, None, :, [2, 2]], (2, 3, 4)),
    op("bool-mask", lambda m, a: a[a > 0], (3, 4)),
    op("bool-mask-slice-int", lambda m, a: a[[True, False, True], :, 1], (3, 2, 4)),
    op("bool-mask-rows", lambda m, a: a[[True, False, True]], (3, 4)),
    # ----- cat, stack, pad -----
    op("cat", lambda m, a, b: m.cat([a, b]), (2, 3), (4, 3)),
    op("cat-dim1", lambda m, a, b: m.cat([a, b], dim=1), (2, 3), (2, 4)),
    op("cat-neg-three", lambda m, a, b, c: m.cat([a, b, c], dim=-1), (2, 1), (2, 3), (2, 2)),
    op("concat", lambda m, a, b: m.concat([a, b], 0), (1, 3), (2, 3)),
    op("stack", lambda m, a, b: m.stack([a, b]), (2, 3), (2, 3)),
    op("stack-dim1", lambda m, a, b: m.stack([a, b], dim=1), (2, 3), (2, 3)),
    op("stack-neg", lambda m, a, b, c: m.stack([a, b, c], dim=-1), (2, 3), (2, 3), (2, 3)),
    op("pad-constant", lambda m, a: m.nn.functional.pad(a, (1, 2)), (2, 3)),
    op("pad-constant-value-2d", lambda m, a: m.nn.functional.pad(a, (1, 2, 0, 1), value=0.5),
       (2, 3, 4)),
    op("pad-constant-3d", lambda m, a: m.nn.functional.pad(a, (1, 0, 0, 2, 1, 1), "constant",
                                                           -1.0), (2, 3, 2)),
    op("pad-reflect-1d", lambda m, a: m.nn.functional.pad(a, (2, 1), mode="reflect"), (2, 2, 4)),
    op("pad-reflect-2d", lambda m, a: m.nn.functional.pad(a, (1, 2, 2, 1), mode="reflect"),
       (1, 2, 3, 4)),
    op("pad-reflect-3d", lambda m, a: m.nn.functional.pad(a, (1, 1, 0, 1, 2, 1), mode="reflect"),
       (1, 1, 3, 2, 3)),
    op("pad-replicate-1d", lambda m, a: m.nn.functional.pad(a, (3, 1), mode="replicate"),
       (2, 2, 3)),
    op("pad-replicate-2d", lambda m, a: m.nn.functional.pad(a, (1, 2, 3, 0), mode="replicate"),
       (1, 2, 2, 3)),
    op("pad-replicate-3d", lambda m, a: m.nn.functional.pad(a, (1, 0, 1, 1, 0, 2),
                                                            mode="replicate"), (1, 1, 2, 2, 3)),
    op("pad-circular-1d", lambda m, a: m.nn.functional.pad(a, (2, 3), mode="circular"),
       (2, 1, 4)),
    op("pad-circular-2d", lambda m, a: m.nn.functional.pad(a, (1, 2, 2, 1), mode="circular"),
       (1, 2, 3, 3)),
    op("pad-circular-3d", lambda m, a: m.nn.functional.pad(a, (1, 1, 2, 0, 0, 1),
                                                           mode="circular"), (1, 1, 2, 2, 3)),
    # ----- casts (a float32 round trip is too coarse for gradcheck) -----
    op("to-float64", lambda m, a: a.to(m.float64) * 2, (3, 4)),
    op("double", lambda m, a: a.double().exp(), (3, 4)),
    op("float", lambda m, a: a.float() * 3, (3, 4), gradcheck=False),
    op("to-float32", lambda m, a: a.to(m.float32).sum(), (3, 4), gradcheck=False),
    # ----- 0-d, empty and non-contiguous operands -----
    op("mul-0d", lambda m, a, b: a * b, (), (3, 4)),
    op("add-0d-1", lambda m, a, b: a + b, (1,), ()),
    op("add-transposed", lambda m, a, b: a.T + b, (4, 3), (3, 4)),
    op("relu-exp-of-strided", lambda m, a: a[:, ::2].relu() * a[:, 1::2].exp(), (2, 6)),
    op("sum-dims-empty-tuple", lambda m, a: a.sum(()), (2, 3)),
    op("mean-dims-empty-tuple", lambda m, a: a.mean(dim=()), (2, 3)),
    op("sum-all-keepdim", lambda m, a: a.sum(dim=None, keepdim=True), (2, 3)),
    op("mean-all-keepdim", lambda m, a: a.mean(dim=None, keepdim=True), (2, 3)),
    op("var-all-keepdim", lambda m, a: a.var(dim=None, keepdim=True), (2, 3)),
    op("add-empty", lambda m, a, b: a + b, (0, 3), (3,)),
    op("sum-empty", lambda m, a: a.sum(0), (0, 3)),
    op("mean-empty", lambda m, a: a.mean(0), (0, 3)),
    op("matmul-empty-inner", lambda m, a, b: a @ b, (2, 0), (0, 3)),
    op("cat-with-empty", lambda m, a, b: m.cat([a, b]), (0, 3), (2, 3)),
    # ----- composites -----
    op("composite-mlp", lambda m, x, w, b: ((x @ w + b).relu() ** 2).mean(), (4, 3), (3, 5),
       (5,)),
    op("composite-normalize", lambda m, x: (x - x.mean(1, keepdim=True))
       / (x.var(1, keepdim=True) + 1e-5).sqrt(), (3, 5)),
]


def _as_tuple(x):
    return tuple(x) if isinstance(x, tuple) else (x,)


def _inputs(case, dtype, key):
    rng = _rng(key, np.dtype(dtype).name)
    return [make_array(spec, dtype, rng) for spec in case.inputs], rng


def _torch_dtype_name(t):
    return str(t.dtype).replace("torch.", "")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", OPS)
def test_op_matches_torch(case, dtype, request):
    torch = pytest.importorskip("torch")
    arrays, rng = _inputs(case, dtype, request.node.callspec.id)
    ours = [ce.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]

    outs = _as_tuple(case.fn(ce, *ours))
    refs = _as_tuple((case.torch_fn or case.fn)(torch, *theirs))
    assert len(outs) == len(refs)
    for out, ref in zip(outs, refs):
        assert out.shape == tuple(ref.shape)
        assert out.dtype.name == _torch_dtype_name(ref)
        if out.dtype.kind == "f":
            assert_close(out.data, ref.detach().numpy())
        else:  # indices of max/min
            np.testing.assert_array_equal(out.data, ref.numpy())

    grad_out = rng.standard_normal(outs[0].shape).astype(outs[0].dtype)
    outs[0].backward(grad_out)
    refs[0].backward(torch.from_numpy(grad_out))
    for x, t in zip(ours, theirs):
        assert x.grad is not None and t.grad is not None
        assert x.grad.dtype == x.dtype
        assert x.grad.shape == x.shape
        assert_close(x.grad.data, t.grad.numpy())


@pytest.mark.parametrize("case", [c for c in OPS if c.values[0].gradcheck])
def test_op_gradcheck(case, request):
    arrays, _ = _inputs(case, "float64", request.node.callspec.id)
    inputs = [ce.tensor(a, requires_grad=True) for a in arrays]
    rtol, atol = tolerance("float64", "gradcheck")
    assert ce.gradcheck(lambda *xs: case.fn(ce, *xs), inputs, rtol=rtol, atol=atol)


# ----- semantics the random inputs above do not reach ------------------------------------------


@pytest.mark.parametrize("op_name", ["max", "min"])
def test_full_max_min_share_the_gradient_among_ties(op_name):
    data = [[1.0, 5.0, 5.0], [-2.0, 5.0, -2.0]] if op_name == "max" else \
        [[1.0, -2.0, 5.0], [-2.0, 5.0, -2.0]]
    x = ce.tensor(data, requires_grad=True)
    out = getattr(x, op_name)()
    out.backward()
    expected = (np.array(data) == out.item()) / 3.0
    np.testing.assert_array_equal(x.grad.data, expected.astype(np.float32))
    torch = pytest.importorskip("torch")
    t = torch.tensor(data, requires_grad=True)
    getattr(t, op_name)().backward()
    np.testing.assert_array_equal(x.grad.data, t.grad.numpy())


@pytest.mark.parametrize("op_name", ["max", "min"])
def test_max_min_with_dim_pick_the_first_tie(op_name):
    data = [[3.0, 7.0, 7.0, 3.0], [0.0, 0.0, -1.0, -1.0]]
    x = ce.tensor(data, requires_grad=True)
    values, indices = getattr(x, op_name)(1)
    values.sum().backward()
    first = {"max": [1, 0], "min": [0, 2]}[op_name]
    np.testing.assert_array_equal(indices.data, first)
    assert indices.dtype == np.int64 and not indices.requires_grad
    expected = np.zeros((2, 4), np.float32)
    expected[[0, 1], first] = 1
    np.testing.assert_array_equal(x.grad.data, expected)
    torch = pytest.importorskip("torch")
    t = torch.tensor(data, requires_grad=True)
    t_values, t_indices = getattr(t, op_name)(1)
    t_values.sum().backward()
    np.testing.assert_array_equal(indices.data, t_indices.numpy())
    np.testing.assert_array_equal(x.grad.data, t.grad.numpy())


@pytest.mark.parametrize("op_name", ["max", "min"])
def test_max_min_propagate_nan(op_name):
    x = ce.tensor([1.0, np.nan, 3.0])
    assert np.isnan(getattr(x, op_name)().item())
    values, indices = getattr(x.reshape(1, 3), op_name)(1)
    assert np.isnan(values.item()) and indices.item() == 1


def test_max_of_0d_tensor_along_dim_0():
    x = ce.tensor(2.5, requires_grad=True)
    values, indices = x.max(0)
    assert values.item() == 2.5 and indices.item() == 0
    values.backward()
    assert x.grad.item() == 1.0


@pytest.mark.parametrize("name", ["argmax", "argmin"])
@pytest.mark.parametrize("dim, keepdim", [(None, False), (0, False), (1, True), (-1, False)])
def test_argmax_argmin_match_torch(name, dim, keepdim):
    data = _rng(name, dim).standard_normal((3, 4)).astype(np.float32)
    ours = getattr(ce, name)(ce.tensor(data), dim, keepdim)
    expected = getattr(np, name)(data, dim, keepdims=keepdim) if dim is not None else \
        getattr(np, name)(data)
    np.testing.assert_array_equal(ours.data, expected)
    torch = pytest.importorskip("torch")
    ref = getattr(torch, name)(torch.tensor(data), dim, keepdim)
    assert ours.shape == tuple(ref.shape)
    np.testing.assert_array_equal(ours.data, ref.numpy())


def test_clamp_with_min_above_max_gives_max_like_torch():
    x = ce.tensor([0.0, 1.0, 2.0], requires_grad=True)
    out = x.clamp(min=1.5, max=0.5)
    out.sum().backward()
    np.testing.assert_array_equal(out.data, [0.5, 0.5, 0.5])
    np.testing.assert_array_equal(x.grad.data, [0, 0, 0])


def test_clamp_gradient_passes_at_the_bounds_like_torch():
    x = ce.tensor([-1.0, -0.5, 0.0, 0.5, 1.0], requires_grad=True)
    x.clamp(-0.5, 0.5).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [0, 1, 1, 1, 0])


@pytest.mark.parametrize("fn, x, expected_grad", [
    (lambda x: x.abs(), [-1.0, 0.0, 2.0], [-1, 0, 1]),   # PyTorch: abs'(0) = 0
    (lambda x: x.relu(), [-1.0, 0.0, 2.0], [0, 0, 1]),   # relu'(0) = 0
    (lambda x: x ** 0, [0.0, 1.0, -2.0], [0, 0, 0]),     # d x^0 = 0, even at 0
    (lambda x: x ** 2, [0.0, 1.0, -2.0], [0, 2, -4]),
])
def test_gradients_at_special_points(fn, x, expected_grad):
    t = ce.tensor(x, requires_grad=True)
    fn(t).sum().backward()
    np.testing.assert_array_equal(t.grad.data, expected_grad)


def test_pow_at_zero_and_negative_bases_matches_torch():
    torch = pytest.importorskip("torch")
    base = np.repeat([0.0, -1.0, 2.0], 4)
    exponent = np.tile([-1.0, 0.0, 0.5, 2.0], 3)
    ours = [ce.tensor(base, requires_grad=True), ce.tensor(exponent, requires_grad=True)]
    theirs = [torch.tensor(base, requires_grad=True), torch.tensor(exponent, requires_grad=True)]
    out, ref = ours[0] ** ours[1], theirs[0] ** theirs[1]
    out.sum().backward()
    ref.sum().backward()
    assert_close(out.data, ref.detach().numpy())
    for x, t in zip(ours, theirs):
        assert_close(x.grad.data, t.grad.numpy())


def test_var_with_no_degrees_of_freedom_is_nan_like_torch():
    x = ce.tensor([3.0], requires_grad=True)
    out = x.var()
    out.backward()
    assert np.isnan(out.item()) and np.isnan(x.grad.item())


def test_var_with_correction_above_count_divides_by_zero_like_torch():
    x = ce.tensor([3.0, 4.0], requires_grad=True)
    out = x.var(correction=3)
    out.backward()
    assert out.item() == np.inf
    np.testing.assert_array_equal(x.grad.data, [np.inf, np.inf])


def test_integer_casts_leave_the_graph():
    x = ce.tensor([1.7, -2.2], requires_grad=True)
    as_int = x.long()
    assert as_int.dtype == np.int64 and not as_int.requires_grad
    np.testing.assert_array_equal(as_int.data, [1, -2])
    back = ce.tensor([1, 2]).float()
    assert back.dtype == np.float32 and not back.requires_grad


def test_indexing_with_a_tensor_index_accumulates():
    x = ce.tensor([1.0, 2.0, 3.0], requires_grad=True)
    x[ce.tensor([2, 2, 0])].sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1, 0, 2])


def test_sum_of_integers_and_booleans_is_int64_like_torch():
    assert ce.tensor([1, 2, 3], dtype=ce.int32).sum().dtype == np.int64
    assert ce.tensor([True, True, False]).sum().item() == 2


# ----- compiled kernels: float32, same-shape, contiguous; under every kernel variant -----------
# Each op runs on float32 tensors (the _C kernels) and on float64 copies (the NumPy path); the
# forward pass is also compared with NumPy float64 directly.

KERNEL_OPS = {
    # name: (fn, NumPy float64 forward, input specs by size, tolerance kind)
    "add": (lambda a, b: a + b, np.add, lambda n: [(n,), (n,)], "exact_ops"),
    "sub": (lambda a, b: a - b, np.subtract, lambda n: [(n,), (n,)], "exact_ops"),
    "mul": (lambda a, b: a * b, np.multiply, lambda n: [(n,), (n,)], "exact_ops"),
    "div": (lambda a, b: a / b, np.divide, lambda n: [(n,), away0(n)], "exact_ops"),
    "exp": (lambda a: a.exp(), np.exp, lambda n: [(n,)], "exact_ops"),
    "relu": (lambda a: a.relu(), lambda a: np.maximum(a, 0), lambda n: [(n,)], "exact_ops"),
    "sum": (lambda a: a.sum(), np.sum, lambda n: [(n,)], "reduction"),
    "mean": (lambda a: a.mean(), np.mean, lambda n: [(n,)], "reduction"),
    "var": (lambda a: a.var(), lambda a: np.var(a, ddof=1), lambda n: [(n,)], "reduction"),
    "var-correction0": (lambda a: a.var(correction=0), np.var, lambda n: [(n,)], "reduction"),
    "max": (lambda a: a.max(), np.max, lambda n: [(n,)], "exact_ops"),
    "min": (lambda a: a.min(), np.min, lambda n: [(n,)], "exact_ops"),
}


@pytest.mark.parametrize("n", [2, 7, 16, 17, 33, 1031])  # around 4/8/16-float vectors
@pytest.mark.parametrize("name", sorted(KERNEL_OPS))
def test_kernel_ops_under_every_isa(isa, name, n):
    fn, numpy_fn, specs, kind = KERNEL_OPS[name]
    rng = _rng(name, n)
    arrays = [make_array(spec, np.float32, rng) for spec in specs(n)]
    ours = [ce.tensor(a, requires_grad=True) for a in arrays]
    slow = [ce.tensor(a.astype(np.float64), requires_grad=True) for a in arrays]
    out, slow_out = fn(*ours), fn(*slow)
    assert out.dtype == np.float32
    assert_close(out.data, numpy_fn(*[a.astype(np.float64) for a in arrays]), kind, np.float32)
    assert_close(out.data, slow_out.data, kind, np.float32)
    grad_out = rng.standard_normal(out.shape)
    out.backward(grad_out.astype(np.float32))
    slow_out.backward(grad_out)
    for x, x_slow in zip(ours, slow):
        assert_close(x.grad.data, x_slow.grad.data, kind, np.float32)


@pytest.mark.parametrize("where", [0, 16, 36])
@pytest.mark.parametrize("op_name", ["max", "min"])
def test_kernel_max_min_see_nan_and_inf_under_every_isa(isa, op_name, where):
    data = _rng(op_name, where).standard_normal(37).astype(np.float32)
    data[(where + 5) % 37] = np.inf if op_name == "max" else -np.inf
    x = ce.tensor(data)
    assert getattr(x, op_name)().item() == getattr(np, op_name)(data)
    data[where] = np.nan
    assert np.isnan(getattr(ce.tensor(data), op_name)().item())


def test_kernel_elementwise_special_values_under_every_isa(isa):
    a = ce.tensor([1.0, -1.0, 0.0, np.inf, -np.inf, np.nan, -0.0, 100.0])
    b = ce.tensor([0.0, 0.0, 0.0, 2.0, np.inf, 1.0, 3.0, 1e-3])
    a64, b64 = a.data.astype(np.float64), b.data.astype(np.float64)
    with np.errstate(all="ignore"):
        for ours, ref in [(a / b, a64 / b64), (a * b, a64 * b64), (a + b, a64 + b64),
                          (a - b, a64 - b64), (a.exp(), np.exp(a64)),
                          (a.relu(), np.maximum(a64, 0))]:
            assert_close(ours.data, ref.astype(np.float32), "exact_ops")


# ----- bad input ---------------------------------------------------------------------------


def _names_all(error, *parts):
    message = str(error.value)
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


@pytest.mark.parametrize("fn, op_name", [
    (lambda a, b: a + b, "add"),
    (lambda a, b: a - b, "sub"),
    (lambda a, b: a * b, "mul"),
    (lambda a, b: a / b, "div"),
    (lambda a, b: a ** b, "pow"),
    (lambda a, b: ce.where(a > 0, a, b), "where"),
    (lambda a, b: a < b, "less"),
    (lambda a, b: a == b, "equal"),
])
def test_shapes_that_do_not_broadcast(fn, op_name):
    a, b = ce.ones(2, 3, requires_grad=True), ce.ones(4, requires_grad=True)
    with pytest.raises(ValueError) as error:
        fn(a, b)
    _names_all(error, op_name, "(2, 3)", "(4,)")


@pytest.mark.parametrize("a_shape, b_shape", [
    ((2, 3), (4, 5)),
    ((3,), (4,)),
    ((2, 3), (2,)),
    ((4,), (3, 2)),
    ((2, 3, 4), (3, 4, 5)),     # batch dims 2 and 3
    ((), (3,)),
])
def test_matmul_shape_mismatch(a_shape, b_shape):
    with pytest.raises(ValueError) as error:
        ce.zeros(a_shape) @ ce.zeros(b_shape)
    _names_all(error, "matmul", str(a_shape), str(b_shape))


@pytest.mark.parametrize("fn, parts", [
    (lambda: ce.cat([ce.zeros(2, 3), ce.zeros(2, 4)]), ["cat", "(2, 4)", "(2, 3)"]),
    (lambda: ce.cat([ce.zeros(2, 3), ce.zeros(2, 3, 1)], 1), ["cat", "(2, 3, 1)"]),
    (lambda: ce.cat([]), ["cat", "non-empty"]),
    (lambda: ce.cat([ce.tensor(1.0), ce.tensor(2.0)]), ["cat", "zero-dimensional"]),
    (lambda: ce.stack([ce.zeros(2, 3), ce.zeros(3, 2)]), ["stack", "(3, 2)", "(2, 3)"]),
    (lambda: ce.stack([]), ["stack", "non-empty"]),
    (lambda: ce.zeros(2, 3).reshape(4, 2), ["reshape", "(2, 3)", "(4, 2)"]),
    (lambda: ce.zeros(2, 3).reshape(-1, 4), ["reshape", "(2, 3)", "(-1, 4)"]),
    (lambda: ce.zeros(2, 3).reshape(-1, -1), ["reshape", "(-1, -1)"]),
    (lambda: ce.zeros(2, 3).view(7), ["reshape", "(7,)"]),
    (lambda: F.pad(ce.zeros(2, 3), (1, 1), mode="wrap"), ["pad", "'wrap'"]),
    (lambda: F.pad(ce.zeros(2, 3), (3, 0), mode="reflect"), ["pad", "reflect", "size 3"]),
    (lambda: F.pad(ce.zeros(2, 3), (0, 4), mode="circular"), ["pad", "circular", "size 3"]),
    (lambda: F.pad(ce.zeros(2, 3), (1, 1, 1)), ["pad", "(1, 1, 1)"]),
    (lambda: F.pad(ce.zeros(3), (1, 1, 1, 1)), ["pad", "1-d"]),
    (lambda: F.pad(ce.zeros(3), (-1, 1)), ["pad", "non-negative"]),
    (lambda: ce.zeros(2, 3).clamp(), ["clamp"]),
    (lambda: ce.zeros(2, 3).sum((1, 1)), ["sum", "repeats"]),
    (lambda: ce.zeros(2, 3).max((0, 1)), ["max", "single"]),
    (lambda: ce.zeros(0).max(), ["max", "empty"]),
    (lambda: ce.zeros(2, 3).permute(0, 0), ["permute"]),
    (lambda: ce.zeros(2, 3).flatten(1, 0), ["flatten"]),
])
def test_bad_arguments_raise_value_error(fn, parts):
    with pytest.raises(ValueError) as error:
        fn()
    _names_all(error, *parts)


@pytest.mark.parametrize("fn, op_name", [
    (lambda x: x.sum(2), "sum"),
    (lambda x: x.mean(-3), "mean"),
    (lambda x: x.var(5), "var"),
    (lambda x: x.max(2), "max"),
    (lambda x: x.min(-3), "min"),
    (lambda x: x.transpose(0, 2), "transpose"),
    (lambda x: x.permute(0, 2), "permute"),
    (lambda x: x.unsqueeze(3), "unsqueeze"),
    (lambda x: x.squeeze(2), "squeeze"),
    (lambda x: x.flatten(0, 2), "flatten"),
    (lambda x: ce.cat([x, x], dim=2), "cat"),
    (lambda x: ce.stack([x, x], dim=-4), "stack"),
])
def test_out_of_range_dims(fn, op_name):
    with pytest.raises(ValueError) as error:
        fn(ce.zeros(2, 3))
    _names_all(error, op_name, "out of range")


@pytest.mark.parametrize("fn", [
    lambda: ce.zeros(2, 3).sum(1.5),
    lambda: ce.zeros(2, 3).reshape(2.0, 3),
    lambda: ce.zeros(2, 3).transpose(0, "1"),
    lambda: ce.where(ce.tensor([1.0, 0.0]), ce.zeros(2), ce.ones(2)),
    lambda: ce.tensor("abc"),
    lambda: ce.tensor(["a", "b"]),
    lambda: ce.zeros(2) + ce.tensor("a"),
])
def test_bad_types_raise_type_error(fn):
    with pytest.raises(TypeError):
        fn()


def test_index_out_of_range_names_the_shape():
    with pytest.raises(IndexError, match=re.escape("(2, 3)")):
        ce.zeros(2, 3)[5]


# ----- float32 matmul on the GEMM engine ---------------------------------------------------------

@pytest.mark.parametrize("make_a, make_b", [
    (lambda a: a, lambda b: b),                            # C-contiguous
    (lambda a: a.T.copy().T, lambda b: b.T.copy().T),      # F-contiguous: transpose flags
    (lambda a: np.pad(a, ((0, 0), (0, 3)))[:, :a.shape[1]], lambda b: b),   # padded rows
    (lambda a: a[::-1], lambda b: b[:, ::-1]),             # negative strides: copied first
    (lambda a: np.repeat(a, 2, axis=1)[:, ::2], lambda b: b),  # no unit stride: copied first
])
def test_float32_matmul_runs_on_gemm_for_any_layout(isa, make_a, make_b):
    rng = np.random.default_rng(7)
    a0 = rng.standard_normal((37, 19)).astype(np.float32)
    b0 = rng.standard_normal((19, 23)).astype(np.float32)
    a = ce.Tensor(make_a(a0.copy()), requires_grad=True)
    b = ce.Tensor(make_b(b0.copy()), requires_grad=True)
    out = a @ b
    g = rng.standard_normal(out.shape).astype(np.float32)
    out.backward(g)
    a64, b64, g64 = (np.asarray(x, dtype=np.float64) for x in (a.data, b.data, g))
    rtol, atol = tolerance("float32", "reduction")
    np.testing.assert_allclose(out.data, a64 @ b64, rtol=rtol, atol=atol)
    np.testing.assert_allclose(a.grad.data, g64 @ b64.T, rtol=rtol, atol=atol)
    np.testing.assert_allclose(b.grad.data, a64.T @ g64, rtol=rtol, atol=atol)


def test_float32_batched_matmul_folds_batch_into_gemm_rows():
    rng = np.random.default_rng(8)
    a = ce.tensor(rng.standard_normal((3, 4, 5, 6)).astype(np.float32), requires_grad=True)
    w = ce.tensor(rng.standard_normal((6, 2)).astype(np.float32), requires_grad=True)
    out = a @ w
    assert out.shape == (3, 4, 5, 2) and out.dtype == np.float32
    out.sum().backward()
    rtol, atol = tolerance("float32", "reduction")
    a64, w64 = a.data.astype(np.float64), w.data.astype(np.float64)
    np.testing.assert_allclose(out.data, a64 @ w64, rtol=rtol, atol=atol)
    np.testing.assert_allclose(w.grad.data, a64.reshape(-1, 6).T @ np.ones((60, 2)), rtol=rtol,
                               atol=atol)


# ----- activation methods and their top-level forms ------------------------------------------

@pytest.mark.parametrize("name, call", [
    ("sigmoid", lambda m, x: m.sigmoid(x)),
    ("tanh", lambda m, x: m.tanh(x)),
    ("softmax", lambda m, x: m.softmax(x, 1)),
    ("log_softmax", lambda m, x: m.log_softmax(x, dim=0)),
])
def test_activation_methods_match_torch(name, call):
    torch = pytest.importorskip("torch")
    data = np.random.default_rng(3).standard_normal((4, 5)).astype(np.float32)
    g = np.random.default_rng(4).standard_normal((4, 5)).astype(np.float32)
    x = ce.tensor(data, requires_grad=True)
    tx = torch.tensor(data, requires_grad=True)
    out, t_out = call(ce, x), call(torch, tx)
    out.backward(g)
    t_out.backward(torch.from_numpy(g))
    assert_close(out.data, t_out.detach().numpy())
    assert_close(x.grad.data, tx.grad.numpy())
    assert_close(call(ce.Tensor, ce.tensor(data)).data, out.data)  # the Tensor method form
