"""Tensor construction, creation helpers, dtype rules, properties, conversions and comparisons."""

import numpy as np
import pytest

import convengine as ce
from conftest import assert_close


def _assert_same_values(ours, torch_tensor):
    if ours.dtype.kind == "f":
        assert_close(ours.data, torch_tensor.numpy(), "vs_torch")
    else:
        np.testing.assert_array_equal(ours.data, torch_tensor.numpy())


# ----- construction and dtype rules ------------------------------------------------------------


@pytest.mark.parametrize("data, dtype", [
    (1.5, np.float32),                      # Python floats become float32, as in PyTorch
    ([1.0, 2.0], np.float32),
    ([[1, 2.5], [3, 4]], np.float32),       # mixed ints and floats
    ([], np.float32),
    (3, np.int64),
    ([1, 2, 3], np.int64),
    (True, np.bool_),
    ([True, False], np.bool_),
    (np.array([1.0, 2.0]), np.float64),     # an ndarray keeps its dtype
    (np.array([1, 2], dtype=np.int32), np.int32),
    (np.array([1, 2], dtype=np.float16), np.float16),
    (np.float64(2.0), np.float64),
])
def test_tensor_infers_dtype_like_torch(data, dtype):
    t = ce.tensor(data)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.asarray(data))
    torch = pytest.importorskip("torch")
    ref = torch.tensor(data) if not isinstance(data, np.ndarray) else torch.from_numpy(data)
    assert str(ref.dtype) == f"torch.{np.dtype(dtype).name}"


def test_tensor_with_explicit_dtype():
    t = ce.tensor([1, 2], dtype=ce.float64)
    assert t.dtype == np.float64
    assert ce.tensor([1.7, 2.2], dtype="int32").tolist() == [1, 2]


def test_tensor_copies_but_Tensor_wraps():
    source = np.array([1.0, 2.0], dtype=np.float32)
    copied, wrapped = ce.tensor(source), ce.Tensor(source)
    source[0] = 9
    assert copied.data[0] == 1 and wrapped.data[0] == 9
    assert ce.Tensor([1.0, 2.0]).dtype == np.float32  # Python floats, as torch.Tensor
    assert ce.tensor(copied).data is not copied.data


def test_as_tensor_shares_when_it_can():
    t = ce.ones(3)
    assert ce.as_tensor(t) is t
    array = np.zeros(3, dtype=np.float32)
    assert ce.as_tensor(array).data is array
    assert ce.as_tensor(array, dtype=ce.float64).dtype == np.float64


@pytest.mark.parametrize("make", [
    lambda: ce.tensor([1, 2], requires_grad=True),
    lambda: ce.tensor([True], requires_grad=True),
    lambda: ce.zeros(2, dtype=ce.int64, requires_grad=True),
    lambda: ce.arange(3, requires_grad=True),
    lambda: ce.full((2,), 3, requires_grad=True),
    lambda: ce.tensor([1, 2]).requires_grad_(),
    lambda: ce.Tensor(np.array([1, 2]), requires_grad=True),
])
def test_requires_grad_on_integer_tensors_is_a_type_error(make):
    with pytest.raises(TypeError, match="floating-point"):
        make()


@pytest.mark.parametrize("data", ["abc", ["a", "b"], [None, 1], [1 + 2j], {"a": 1}])
def test_non_numeric_data_is_a_type_error(data):
    with pytest.raises(TypeError, match="Tensor"):
        ce.tensor(data)


# (ours, expected dtype, the same in torch)
PROMOTIONS = [
    (lambda ce: ce.arange(4) / 2, "float32", lambda t: t.arange(4) / 2),      # int / int
    (lambda ce: ce.arange(4) * 0.5, "float32", lambda t: t.arange(4) * 0.5),  # int * float
    (lambda ce: ce.arange(4) + ce.ones(4), "float32", lambda t: t.arange(4) + t.ones(4)),
    (lambda ce: ce.arange(4).exp(), "float32", lambda t: t.arange(4).exp()),
    (lambda ce: ce.arange(1, 4).log(), "float32", lambda t: t.arange(1, 4).log()),
    (lambda ce: ce.arange(4).sqrt(), "float32", lambda t: t.arange(4).sqrt()),
    (lambda ce: ce.arange(4) ** 0.5, "float32", lambda t: t.arange(4) ** 0.5),
    (lambda ce: ce.arange(4) ** 2, "int64", lambda t: t.arange(4) ** 2),
    (lambda ce: ce.arange(4) + 1, "int64", lambda t: t.arange(4) + 1),
    (lambda ce: ce.ones(2) * 2.5, "float32", lambda t: t.ones(2) * 2.5),
    (lambda ce: ce.ones(2) + ce.ones(2, dtype=ce.float64), "float64",
     lambda t: t.ones(2) + t.ones(2, dtype=t.float64)),
    (lambda ce: ce.ones(2, dtype=ce.float64) / 3, "float64",
     lambda t: t.ones(2, dtype=t.float64) / 3),
    (lambda ce: ce.where(ce.arange(3) > 0, ce.arange(3), 0.5), "float32",
     lambda t: t.where(t.arange(3) > 0, t.arange(3), 0.5)),
    (lambda ce: ce.arange(5).clamp(1.5), "float32", lambda t: t.arange(5).clamp(1.5)),
    (lambda ce: ce.arange(5).clamp(1, 3), "int64", lambda t: t.arange(5).clamp(1, 3)),
    (lambda ce: ce.arange(6).reshape(2, 3) @ ce.ones(3, 2), "float32",
     lambda t: t.arange(6).reshape(2, 3).float() @ t.ones(3, 2)),  # torch needs .float()
]


@pytest.mark.parametrize("ours, dtype, theirs", PROMOTIONS)
def test_arithmetic_result_dtype_matches_torch(ours, dtype, theirs):
    result = ours(ce)
    assert result.dtype == dtype
    torch = pytest.importorskip("torch")
    ref = theirs(torch)
    assert str(ref.dtype) == f"torch.{dtype}"
    _assert_same_values(result, ref)


# ----- creation helpers ------------------------------------------------------------------------


@pytest.mark.parametrize("make, shape, value", [
    (lambda: ce.zeros(2, 3), (2, 3), 0),
    (lambda: ce.zeros((2, 3)), (2, 3), 0),
    (lambda: ce.zeros([4]), (4,), 0),
    (lambda: ce.zeros(), (), 0),
    (lambda: ce.ones(3, 1), (3, 1), 1),
    (lambda: ce.ones((0, 2)), (0, 2), 1),
    (lambda: ce.full((2, 2), 1.5), (2, 2), 1.5),
    (lambda: ce.zeros_like(ce.ones(2, 5)), (2, 5), 0),
    (lambda: ce.ones_like(ce.zeros(3)), (3,), 1),
])
def test_filled_tensors(make, shape, value):
    t = make()
    assert t.shape == shape and t.dtype == np.float32 and not t.requires_grad
    assert np.all(t.data == value)


@pytest.mark.parametrize("fill, dtype", [(3, np.int64), (True, np.bool_), (1.5, np.float32)])
def test_full_infers_dtype_from_the_fill_value_like_torch(fill, dtype):
    assert ce.full((2,), fill).dtype == dtype
    torch = pytest.importorskip("torch")
    assert str(torch.full((2,), fill).dtype) == f"torch.{np.dtype(dtype).name}"


def test_creation_dtype_and_requires_grad():
    t = ce.zeros(2, dtype=ce.float64, requires_grad=True)
    assert t.dtype == np.float64 and t.requires_grad and t.is_leaf
    assert ce.zeros_like(ce.arange(3)).dtype == np.int64
    assert ce.ones_like(ce.zeros(2), dtype=ce.float64).dtype == np.float64
    assert ce.full((2,), 7, dtype=ce.float32).dtype == np.float32


@pytest.mark.parametrize("make", [lambda: ce.zeros(-1), lambda: ce.ones(2.5),
                                  lambda: ce.randn(2, -3), lambda: ce.arange(0, 5, 0)])
def test_bad_sizes_are_value_errors(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize("args", [(5,), (2, 7), (1, 10, 3), (5, 0, -2), (0.0, 1.0, 0.1),
                                  (-1.5, 2.0, 0.5), (3.0,), (0, 2, 0.25)])
def test_arange_matches_torch(args):
    t = ce.arange(*args)
    expected_dtype = np.int64 if all(isinstance(a, int) for a in args) else np.float32
    assert t.dtype == expected_dtype
    torch = pytest.importorskip("torch")
    ref = torch.arange(*args)
    assert str(ref.dtype) == f"torch.{t.dtype.name}"
    _assert_same_values(t, ref)


@pytest.mark.parametrize("make", [ce.randn, ce.rand])
def test_random_tensors(make):
    t = make(200, 3)
    assert t.shape == (200, 3) and t.dtype == np.float32
    assert make((4,)).shape == (4,)
    assert make(2, dtype=ce.float64, requires_grad=True).requires_grad
    if make is ce.rand:
        assert t.data.min() >= 0 and t.data.max() < 1
    else:
        assert abs(t.data.mean()) < 0.3 and 0.7 < t.data.std() < 1.3


def test_manual_seed_makes_random_tensors_reproducible():
    ce.manual_seed(123)
    first = (ce.randn(3, 4).data, ce.rand(5).data)
    ce.manual_seed(123)
    second = (ce.randn(3, 4).data, ce.rand(5).data)
    np.testing.assert_array_equal(first[0], second[0])
    np.testing.assert_array_equal(first[1], second[1])
    ce.manual_seed(124)
    assert not np.array_equal(ce.randn(3, 4).data, first[0])
    generator = ce.manual_seed(5)
    assert ce.default_generator() is generator


def test_an_explicit_generator_is_independent_of_the_global_one():
    a = ce.randn(3, generator=np.random.default_rng(7)).data
    ce.randn(10)
    b = ce.randn(3, generator=np.random.default_rng(7)).data
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("seed", [-1, 1.5, "1"])
def test_manual_seed_rejects_bad_seeds(seed):
    with pytest.raises(ValueError, match="seed"):
        ce.manual_seed(seed)


# ----- properties and conversions --------------------------------------------------------------


def test_properties():
    t = ce.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4) and t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.ndim == 3 and t.dim() == 3 and t.numel() == 24 and len(t) == 2
    assert t.dtype == ce.float32
    assert t.is_leaf and t.grad_fn is None and t.grad is None and not t.requires_grad
    y = ce.ones(2, requires_grad=True) * 2
    assert not y.is_leaf and y.grad_fn is not None and y.requires_grad


def test_item_and_python_numbers():
    assert ce.tensor(2.5).item() == 2.5 and isinstance(ce.tensor(2.5).item(), float)
    assert ce.tensor([[7]]).item() == 7 and isinstance(ce.tensor([7]).item(), int)
    assert float(ce.tensor([1.5])) == 1.5 and int(ce.tensor(3.7)) == 3
    assert bool(ce.tensor([1.0])) and not bool(ce.tensor(0))
    with pytest.raises(ValueError, match=r"\(2,\)"):
        ce.tensor([1.0, 2.0]).item()
    with pytest.raises(ValueError, match="ambiguous"):
        bool(ce.tensor([1.0, 2.0]))


def test_numpy_shares_and_array_converts():
    t = ce.tensor([1.0, 2.0])
    assert t.numpy() is t.data
    assert np.asarray(t) is t.data
    as64 = np.asarray(t, dtype=np.float64)
    assert as64.dtype == np.float64
    copied = np.array(t, copy=True)
    copied[0] = 5
    assert t.data[0] == 1
    np.testing.assert_array_equal(np.exp(t), np.exp(t.data))


def test_detach_shares_data_and_leaves_the_graph():
    x = ce.ones(3, requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.data is y.data and not d.requires_grad and d.is_leaf


def test_tolist_len_iter():
    t = ce.tensor([[1, 2], [3, 4]])
    assert t.tolist() == [[1, 2], [3, 4]]
    assert len(t) == 2
    assert [row.tolist() for row in t] == [[1, 2], [3, 4]]
    with pytest.raises(TypeError):
        len(ce.tensor(1.0))
    with pytest.raises(TypeError):
        iter(ce.tensor(1.0))


def test_repr():
    assert repr(ce.tensor([1.0, 2.5])) == "tensor([1. , 2.5])"
    assert repr(ce.tensor([1, 2])) == "tensor([1, 2], dtype=int64)"
    assert repr(ce.tensor(1.0, requires_grad=True)) == "tensor(1., requires_grad=True)"
    assert "grad_fn=<Mul>" in repr(ce.tensor([1.0], requires_grad=True) * 2)


def test_requires_grad_and_zero_in_place():
    t = ce.ones(2)
    assert t.requires_grad_() is t and t.requires_grad
    t.requires_grad_(False)
    assert not t.requires_grad
    with pytest.raises(RuntimeError, match="leaf"):
        (ce.ones(2, requires_grad=True) * 2).requires_grad_(False)
    assert t.zero_() is t and t.tolist() == [0, 0]


def test_tensors_stay_hashable():
    a, b = ce.ones(1), ce.ones(1)
    assert len({a, b}) == 2 and {a: 1}[a] == 1


@pytest.mark.parametrize("cast, dtype", [
    (lambda t: t.float(), np.float32), (lambda t: t.double(), np.float64),
    (lambda t: t.long(), np.int64), (lambda t: t.to(ce.float16), np.float16),
    (lambda t: t.to("float64"), np.float64),
])
def test_casts(cast, dtype):
    t = cast(ce.tensor([1.5, -2.5]))
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.data, np.array([1.5, -2.5]).astype(dtype))


# ----- comparisons -----------------------------------------------------------------------------

COMPARISONS = {
    "lt": (lambda a, b: a < b, np.less),
    "le": (lambda a, b: a <= b, np.less_equal),
    "gt": (lambda a, b: a > b, np.greater),
    "ge": (lambda a, b: a >= b, np.greater_equal),
    "eq": (lambda a, b: a == b, np.equal),
    "ne": (lambda a, b: a != b, np.not_equal),
}


@pytest.mark.parametrize("name", sorted(COMPARISONS))
@pytest.mark.parametrize("other", ["tensor", "broadcast", "scalar", "reflected"])
def test_comparisons_give_boolean_tensors_without_gradient(name, other):
    ours, ref = COMPARISONS[name]
    a = ce.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]], requires_grad=True)
    b = {"tensor": ce.tensor([[1.0, 3.0, 2.0], [3.0, 1.0, 1.0]], requires_grad=True),
         "broadcast": ce.tensor([2.0, 2.0, 1.0]), "scalar": 2.0, "reflected": 2.0}[other]
    if other == "reflected":
        result, expected = ours(b, a), ref(b, a.data)
    else:
        result, expected = ours(a, b), ref(a.data, getattr(b, "data", b))
    assert isinstance(result, ce.Tensor) and result.dtype == np.bool_
    assert not result.requires_grad and result.grad_fn is None
    np.testing.assert_array_equal(result.data, expected)
