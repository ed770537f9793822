"""The autograd core: Function, grad mode, the backward walk, gradient accumulation,
retain_graph, deep graphs, backward's argument checks and gradcheck."""

import sys
import threading
import weakref

import numpy as np
import pytest

import convengine as ce
from convengine import Function
from conftest import assert_close, tolerance


class Square(Function):
    """x ** 2, recording what it was given so the tests can look."""

    seen = []

    def forward(self, x):
        Square.seen.append(("forward", type(x)))
        self.x = x
        return x * x

    def backward(self, grad):
        Square.seen.append(("backward", type(grad)))
        return 2 * self.x * grad


class ScaledAdd(Function):
    """a + alpha * b, with a keyword parameter; returns None for gradients not needed."""

    def forward(self, a, b, alpha=1.0):
        self.alpha = alpha
        return a + alpha * b

    def backward(self, grad):
        need_a, need_b = self.needs_input_grad
        return (grad if need_a else None, self.alpha * grad if need_b else None)


class WrongSquare(Function):
    """A deliberately wrong backward (3x instead of 2x)."""

    def forward(self, x):
        self.x = x
        return x * x

    def backward(self, grad):
        return 3 * self.x * grad


# ----- Function API ----------------------------------------------------------------------------


def test_function_forward_and_backward_see_raw_arrays():
    Square.seen = []
    x = ce.tensor([1.0, -2.0, 3.0], requires_grad=True)
    y = Square.apply(x)
    assert isinstance(y, ce.Tensor) and y.requires_grad and not y.is_leaf
    assert y.grad_fn.name == "Square"
    np.testing.assert_array_equal(y.data, [1, 4, 9])
    y.sum().backward()
    np.testing.assert_array_equal(x.grad.data, [2, -4, 6])
    assert Square.seen == [("forward", np.ndarray), ("backward", np.ndarray)]


def test_function_with_constants_and_keyword_parameters():
    a = ce.tensor([1.0, 2.0], requires_grad=True)
    b = ce.tensor([3.0, 4.0])
    out = ScaledAdd.apply(a, b, alpha=2.0)
    assert out.grad_fn.needs_input_grad == (True, False)
    np.testing.assert_array_equal(out.data, [7, 10])
    out.sum().backward()
    np.testing.assert_array_equal(a.grad.data, [1, 1])
    assert b.grad is None
    # A Python number is a constant input.
    out = ScaledAdd.apply(a, 5.0, alpha=0.5)
    assert out.grad_fn.needs_input_grad == (True, False)
    np.testing.assert_array_equal(out.data, [3.5, 4.5])


def test_function_records_nothing_when_no_input_needs_grad():
    out = Square.apply(ce.tensor([1.0, 2.0]))
    assert not out.requires_grad and out.grad_fn is None and out.is_leaf


def test_function_releases_saved_arrays_after_backward():
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    y = Square.apply(x)
    node = y.grad_fn
    y.sum().backward()
    assert node.released and not hasattr(node, "x")


class TooManyGrads(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        return grad, grad


class BadShapeGrad(Function):
    def forward(self, x):
        return x.copy()

    def backward(self, grad):
        return grad.sum()


@pytest.mark.parametrize("fn, match", [
    (TooManyGrads.apply, "2 gradients for 1 inputs"),
    (BadShapeGrad.apply, r"BadShapeGrad.backward returned a gradient of shape \(\)"),
])
def test_function_backward_contract_is_checked(fn, match):
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match=match):
        fn(x).sum().backward()


# ----- grad mode -------------------------------------------------------------------------------


def test_no_grad_context_manager():
    x = ce.ones(3, requires_grad=True)
    assert ce.is_grad_enabled()
    with ce.no_grad():
        assert not ce.is_grad_enabled()
        y = x * 2
    assert ce.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None


def test_enable_grad_inside_no_grad():
    x = ce.ones(3, requires_grad=True)
    with ce.no_grad():
        with ce.enable_grad():
            assert ce.is_grad_enabled()
            y = x * 2
        assert not ce.is_grad_enabled()
        z = x * 2
    assert y.requires_grad and not z.requires_grad


def test_grad_mode_is_restored_after_an_exception():
    with pytest.raises(ZeroDivisionError):
        with ce.no_grad():
            1 / 0
    assert ce.is_grad_enabled()


@pytest.mark.parametrize("decorator", [ce.no_grad(), ce.no_grad], ids=["called", "bare"])
def test_no_grad_decorator(decorator):
    @decorator
    def double(t):
        """Doubles."""
        assert not ce.is_grad_enabled()
        return t * 2

    x = ce.ones(2, requires_grad=True)
    assert not double(x).requires_grad
    assert ce.is_grad_enabled()
    assert double.__name__ == "double" and double.__doc__ == "Doubles."


@pytest.mark.parametrize("decorator", [ce.enable_grad(), ce.enable_grad], ids=["called", "bare"])
def test_enable_grad_decorator(decorator):
    @decorator
    def double(t):
        return t * 2

    x = ce.ones(2, requires_grad=True)
    with ce.no_grad():
        assert double(x).requires_grad
        assert not ce.is_grad_enabled()


def test_grad_mode_is_per_thread():
    seen = []
    with ce.no_grad():
        thread = threading.Thread(target=lambda: seen.append(ce.is_grad_enabled()))
        thread.start()
        thread.join()
    assert seen == [True]


# ----- the backward walk -----------------------------------------------------------------------


@pytest.mark.parametrize("fn, grad", [
    (lambda x: x * x, lambda x: 2 * x),
    (lambda x: x + x, lambda x: np.full_like(x, 2)),
    (lambda x: x * x * x, lambda x: 3 * x ** 2),
    (lambda x: x - x, lambda x: np.zeros_like(x)),
    (lambda x: x / x, lambda x: np.zeros_like(x)),
    # diamond: y feeds two branches that meet again
    (lambda x: (lambda y: y.exp() + y * y)(x * 3), lambda x: 3 * np.exp(3 * x) + 18 * x),
    # the same tensor broadcast against itself
    (lambda x: x.reshape(3, 1) * x.reshape(1, 3), lambda x: 2 * x.sum() * np.ones_like(x)),
    # a slice and the whole, summed
    (lambda x: x[1:] * x[:-1], lambda x: np.r_[x[1], x[:-2] + x[2:], x[-2]]),
])
def test_gradients_accumulate_when_a_tensor_is_used_twice(fn, grad):
    data = np.array([0.5, -1.0, 2.0])
    x = ce.tensor(data, requires_grad=True)
    fn(x).sum().backward()
    assert_close(x.grad.data, grad(data), "vs_torch")
    torch = pytest.importorskip("torch")
    t = torch.tensor(data, requires_grad=True)
    fn(t).sum().backward()
    assert_close(x.grad.data, t.grad.numpy(), "vs_torch")


def test_backward_twice_accumulates_into_grad_like_torch():
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3 + 2, 3 + 4])
    x.grad = None
    (x * 3).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [3, 3])


def test_retain_graph():
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_array_equal(x.grad.data, [4, 8])
    with pytest.raises(RuntimeError, match="retain_graph"):
        y.backward()


def test_second_backward_without_retain_graph_raises():
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    y = (x.exp() * 2).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_backward_through_a_shared_freed_subgraph_raises():
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    shared = x * x
    shared.sum().backward()
    with pytest.raises(RuntimeError, match="retain_graph"):
        (shared + 1).sum().backward()


@pytest.mark.parametrize("retain_graph", [False, True])
def test_backward_frees_the_graph_unless_retained(retain_graph):
    x = ce.ones(3, requires_grad=True)
    hidden = x * 2
    alive = weakref.ref(hidden)
    loss = (hidden * 3).sum()
    del hidden
    assert alive() is not None  # the graph holds it for backward
    loss.backward(retain_graph=retain_graph)
    assert (alive() is not None) == retain_graph  # as PyTorch, even while loss lives


def test_ten_thousand_op_chain_is_iterative():
    assert sys.getrecursionlimit() < 20_000  # a recursive walk would fail
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    y = x
    for _ in range(10_000):
        y = -(y * 2.0) * 0.5 + x  # 4 nodes a step; x is used at every step too
    y.sum().backward()
    # d y_k / dx = 1 - d y_(k-1) / dx, starting from 1: alternates 0, 1, 0, ... (exactly)
    np.testing.assert_array_equal(x.grad.data, [1, 1])


def test_backward_on_a_leaf():
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    x.backward(ce.tensor([3.0, 4.0]))
    np.testing.assert_array_equal(x.grad.data, [3, 4])


def test_only_leaves_get_grad():
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    (y * y).sum().backward()
    assert y.grad is None and x.grad is not None


def test_detach_stops_the_gradient():
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    (x * x.detach()).sum().backward()
    np.testing.assert_array_equal(x.grad.data, [1, 2])


def test_inputs_without_requires_grad_get_no_grad():
    x = ce.tensor([1.0, 2.0], requires_grad=True)
    c = ce.tensor([3.0, 4.0])
    (x * c).sum().backward()
    assert c.grad is None


def test_grad_keeps_the_input_dtype():
    x32 = ce.tensor([1.0, 2.0], requires_grad=True)
    x64 = ce.tensor([1.0, 2.0], dtype=ce.float64, requires_grad=True)
    (x32 * x64).sum().backward()
    assert x32.grad.dtype == np.float32 and x64.grad.dtype == np.float64
    y = x32 * 2
    y.backward(np.array([1.0, 1.0]))  # a float64 gradient for a float32 output
    assert x32.grad.dtype == np.float32


def test_explicit_gradient_is_used():
    x = ce.tensor([[1.0, 2.0], [3.0, 4.0]], requires_grad=True)
    (x * 2).backward(ce.tensor([[1.0, 0.0], [0.5, -1.0]]))
    np.testing.assert_array_equal(x.grad.data, [[2, 0], [1, -2]])


def test_one_element_non_0d_output_needs_no_gradient():
    x = ce.tensor([3.0], requires_grad=True)
    (x * 2).backward()
    np.testing.assert_array_equal(x.grad.data, [2])


# ----- backward's argument checks --------------------------------------------------------------


def test_backward_on_a_non_scalar_without_gradient_names_the_shape():
    y = ce.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"scalar.*\(2, 3\)"):
        y.backward()


def test_backward_with_a_gradient_of_the_wrong_shape():
    y = ce.ones(2, 3, requires_grad=True) * 2
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        y.backward(ce.ones(3, 2))


def test_backward_on_a_tensor_without_graph():
    with pytest.raises(RuntimeError, match="requires_grad"):
        ce.ones(2).sum().backward()


# ----- gradcheck -------------------------------------------------------------------------------


def _f64(*shape, seed=0):
    rng = np.random.default_rng(seed)
    return ce.tensor(rng.standard_normal(shape), requires_grad=True)


GRADCHECK_RTOL, GRADCHECK_ATOL = tolerance("float64", "gradcheck")


@pytest.mark.parametrize("fn, inputs", [
    (lambda x: Square.apply(x), [_f64(3)]),
    (lambda a, b: ScaledAdd.apply(a, b, alpha=-2.0), [_f64(2, 3), _f64(2, 3, seed=1)]),
    (lambda a, b: (a @ b).exp().sum(), [_f64(2, 3), _f64(3, 2, seed=1)]),
    (lambda a, b: (a * b, a - b), [_f64(3), _f64(3, seed=1)]),     # two outputs
    (lambda a, k: a * k, [_f64(2, 2), 3.0]),                       # a non-tensor argument
    (lambda a, c: a * c, [_f64(3), ce.tensor([1.0, 2.0, 3.0])]),   # a constant tensor (float32)
])
def test_gradcheck_passes_on_correct_functions(fn, inputs):
    assert ce.gradcheck(fn, inputs, rtol=GRADCHECK_RTOL, atol=GRADCHECK_ATOL) is True


def test_gradcheck_accepts_a_single_tensor():
    assert ce.gradcheck(lambda x: x.exp(), _f64(3))


def test_gradcheck_handles_non_contiguous_inputs():
    base = np.random.default_rng(0).standard_normal((3, 4))
    x = ce.Tensor(base.T, requires_grad=True)  # a transposed view
    assert not x.data.flags.c_contiguous
    assert ce.gradcheck(lambda t: t * t, [x])


def test_gradcheck_raises_on_a_wrong_backward():
    x = _f64(3)
    with pytest.raises(ce.GradcheckError, match="output 0 with respect to input 0"):
        ce.gradcheck(lambda t: WrongSquare.apply(t), [x])
    assert ce.gradcheck(lambda t: WrongSquare.apply(t), [x], raise_exception=False) is False


def test_gradcheck_leaves_inputs_as_they_were():
    x = _f64(3)
    data = x.data.copy()
    x.grad = ce.tensor([7.0, 7.0, 7.0], dtype=ce.float64)
    ce.gradcheck(lambda t: t.exp(), [x])
    np.testing.assert_array_equal(x.data, data)
    np.testing.assert_array_equal(x.grad.data, [7, 7, 7])


def test_gradcheck_rejects_float32_inputs():
    with pytest.raises(TypeError, match="float64"):
        ce.gradcheck(lambda t: t * 2, [ce.ones(3, requires_grad=True)])


def test_gradcheck_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="requires_grad"):
        ce.gradcheck(lambda t: t * 2, [ce.ones(3, dtype=ce.float64)])


def test_gradcheck_needs_tensor_outputs():
    with pytest.raises(TypeError, match="not a Tensor"):
        ce.gradcheck(lambda t: 1.0, [_f64(3)])
