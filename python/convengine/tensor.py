"""Tensor: an ndarray plus what reverse-mode differentiation needs (grad, requires_grad, graph).

Operations on Tensors go through Function.apply (functions/), which runs the kernels on the
raw arrays and records the graph when a gradient is needed. Indexing, arithmetic and reductions
follow NumPy's broadcasting and PyTorch's names (dim, keepdim, reshape, permute, ...).
"""

import collections

import numpy as np

from . import autograd
from .functions import activation, arithmetic, pointwise, reduction, shape

__all__ = ["Tensor", "MinMaxResult"]

# The result of max(dim=...) and min(dim=...), as in PyTorch.
MinMaxResult = collections.namedtuple("MinMaxResult", ["values", "indices"])


def _check_dtype(array, requires_grad):
    kind = array.dtype.kind
    if kind not in "biuf":
        raise TypeError(f"Tensor: expected numeric or boolean data, got dtype {array.dtype}")
    if requires_grad and kind != "f":
        raise TypeError(
            f"Tensor: only floating-point tensors can require gradients, got dtype {array.dtype}"
        )


class Tensor:
    """An n-dimensional array that can record operations for backward().

    Prefer the creation helpers (convengine.tensor, zeros, ones, randn, arange). Tensor(array)
    wraps an ndarray without copying it; Python floats become float32, as in PyTorch.
    """

    # ndarray (op) Tensor defers to Tensor's reflected operator.
    __array_priority__ = 1000

    def __init__(self, data, requires_grad=False):
        if isinstance(data, Tensor):
            data = data.data
        array = np.asarray(data)
        if array.dtype == np.float64 and not isinstance(data, (np.ndarray, np.generic)):
            array = array.astype(np.float32)  # Python floats
        _check_dtype(array, requires_grad)
        self.data = array
        self.requires_grad = bool(requires_grad)
        self.grad = None
        self._ctx = None

    @classmethod
    def _from_function(cls, array, ctx):
        out = cls.__new__(cls)
        out.data = np.asarray(array)
        out.requires_grad = ctx is not None
        out.grad = None
        out._ctx = ctx
        return out

    # ----- array facts ---------------------------------------------------------------------
    @property
    def shape(self):
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self):
        return self.data.ndim

    def dim(self):
        return self.data.ndim

    def size(self, dim=None):
        """The shape, or its length along `dim` (PyTorch's size())."""
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self):
        return self.data.size

    @property
    def is_leaf(self):
        return self._ctx is None

    @property
    def grad_fn(self):
        """The Function that produced this tensor, or None for a leaf."""
        return self._ctx

    def __len__(self):
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def __repr__(self):
        body = np.array2string(self.data, separator=", ", prefix="tensor(")
        extra = ""
        if self.data.dtype != np.float32:
            extra += f", dtype={self.data.dtype}"
        if self._ctx is not None:
            extra += f", grad_fn=<{self._ctx.name}>"
        elif self.requires_grad:
            extra += ", requires_grad=True"
        return f"tensor({body}{extra})"

    # ----- leaving the graph ---------------------------------------------------------------
    def numpy(self):
        """The underlying ndarray (shared, not copied)."""
        return self.data

    def __array__(self, dtype=None, copy=None):
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        return self.data if dtype is None else self.data.astype(dtype, copy=False)

    def item(self):
        if self.data.size != 1:
            raise ValueError(
                f"item: only a one-element tensor converts to a Python number, got shape "
                f"{self.shape}"
            )
        return self.data.item()

    def tolist(self):
        return self.data.tolist()

    def __bool__(self):
        if self.data.size != 1:
            raise ValueError(
                f"bool: the truth value of a tensor of shape {self.shape} is ambiguous"
            )
        return bool(self.data)

    def __float__(self):
        return float(self.item())

    def __int__(self):
        return int(self.item())

    def detach(self):
        """A tensor sharing this one's data, outside the graph."""
        return Tensor(self.data)

    def requires_grad_(self, requires_grad=True):
        if not self.is_leaf:
            raise RuntimeError("requires_grad_: only leaf tensors can change requires_grad")
        _check_dtype(self.data, requires_grad)
        self.requires_grad = bool(requires_grad)
        return self

    def zero_(self):
        """Fills the data with zeros in place (outside the graph)."""
        self.data[...] = 0
        return self

    # ----- gradients -----------------------------------------------------------------------
    def backward(self, gradient=None, retain_graph=False):
        """Accumulates d(self)/d(leaf) into the ``.grad`` of every leaf that requires grad.

        gradient: d(loss)/d(self), required unless self has one element.
        retain_graph: keep the graph so that backward() can walk it again.
        """
        autograd.run_backward(self, gradient, retain_graph)

    def _accumulate_grad(self, grad):
        if self.grad is None:
            self.grad = Tensor(np.array(grad, dtype=self.dtype, copy=True))
        else:
            self.grad = Tensor(self.grad.data + grad)

    # ----- dtype ---------------------------------------------------------------------------
    def to(self, dtype):
        """This tensor converted to `dtype` (differentiable between floating types)."""
        return pointwise.Cast.apply(self, dtype=np.dtype(dtype))

    def float(self):
        return self.to(np.float32)

    def double(self):
        return self.to(np.float64)

    def long(self):
        return self.to(np.int64)

    # ----- arithmetic ----------------------------------------------------------------------
    def __add__(self, other):
        return arithmetic.Add.apply(self, other)

    def __radd__(self, other):
        return arithmetic.Add.apply(other, self)

    def __sub__(self, other):
        return arithmetic.Sub.apply(self, other)

    def __rsub__(self, other):
        return arithmetic.Sub.apply(other, self)

    def __mul__(self, other):
        return arithmetic.Mul.apply(self, other)

    def __rmul__(self, other):
        return arithmetic.Mul.apply(other, self)

    def __truediv__(self, other):
        return arithmetic.Div.apply(self, other)

    def __rtruediv__(self, other):
        return arithmetic.Div.apply(other, self)

    def __pow__(self, exponent):
        return arithmetic.Pow.apply(self, exponent)

    def __rpow__(self, base):
        return arithmetic.Pow.apply(base, self)

    def __matmul__(self, other):
        return arithmetic.MatMul.apply(self, other)

    def __rmatmul__(self, other):
        return arithmetic.MatMul.apply(other, self)

    def __neg__(self):
        return arithmetic.Neg.apply(self)

    def __pos__(self):
        return self

    def __abs__(self):
        return pointwise.Abs.apply(self)

    add, sub, mul, div, pow, matmul = __add__, __sub__, __mul__, __truediv__, __pow__, __matmul__
    neg, abs = __neg__, __abs__

    # ----- comparisons (no gradient) -------------------------------------------------------
    def _compare(self, other, op):
        other = other.data if isinstance(other, Tensor) else other
        try:
            np.broadcast_shapes(self.shape, np.shape(other))
        except ValueError:
            raise ValueError(
                f"{op.__name__}: shapes {self.shape} and {np.shape(other)} do not broadcast"
            ) from None
        return Tensor(op(self.data, other))

    def __lt__(self, other):
        return self._compare(other, np.less)

    def __le__(self, other):
        return self._compare(other, np.less_equal)

    def __gt__(self, other):
        return self._compare(other, np.greater)

    def __ge__(self, other):
        return self._compare(other, np.greater_equal)

    def __eq__(self, other):
        return self._compare(other, np.equal)

    def __ne__(self, other):
        return self._compare(other, np.not_equal)

    # Tensors stay usable as dict keys and set members despite the element-wise __eq__.
    __hash__ = object.__hash__

    # ----- element-wise functions ----------------------------------------------------------
    def exp(self):
        return pointwise.Exp.apply(self)

    def log(self):
        return pointwise.Log.apply(self)

    def sqrt(self):
        return pointwise.Sqrt.apply(self)

    def relu(self):
        return pointwise.Relu.apply(self)

    def sigmoid(self):
        return activation.sigmoid(self)

    def tanh(self):
        return activation.tanh(self)

    def softmax(self, dim, dtype=None):
        return activation.softmax(self, dim, dtype, log=False)

    def log_softmax(self, dim, dtype=None):
        return activation.softmax(self, dim, dtype, log=True)

    def clamp(self, min=None, max=None):
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must be given")
        return pointwise.Clamp.apply(self, low=min, high=max)

    clip = clamp

    # ----- reductions ----------------------------------------------------------------------
    def sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = reduction.resolve_dim(dim, axis, keepdim, keepdims, self.ndim, "sum")
        return reduction.Sum.apply(self, dim=dim, keepdim=keepdim)

    def mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        dim, keepdim = reduction.resolve_dim(dim, axis, keepdim, keepdims, self.ndim, "mean")
        return reduction.Mean.apply(self, dim=dim, keepdim=keepdim)

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None,
            keepdims=None):
        """Variance; correction=1 (the default, like unbiased=True) divides by n - 1."""
        dim, keepdim = reduction.resolve_dim(dim, axis, keepdim, keepdims, self.ndim, "var")
        correction = reduction.resolve_correction(unbiased, correction)
        return reduction.Var.apply(self, dim=dim, keepdim=keepdim, correction=correction)

    def max(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The largest element; with dim, a (values, indices) pair along that dimension."""
        return self._extremum(dim, keepdim, axis, keepdims, "max")

    def min(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        """The smallest element; with dim, a (values, indices) pair along that dimension."""
        return self._extremum(dim, keepdim, axis, keepdims, "min")

    def _extremum(self, dim, keepdim, axis, keepdims, op):
        dim, keepdim = reduction.resolve_dim(dim, axis, keepdim, keepdims, self.ndim, op)
        if dim is None:
            return reduction.Extremum.apply(self, op=op)
        if len(dim) != 1:
            raise ValueError(f"{op}: dim must be a single dimension, got {dim}")
        if self.ndim == 0:  # a 0-d tensor is its own extremum along "dim 0", at index 0
            return MinMaxResult(self.reshape(()), Tensor(np.array(0)))
        indices = reduction.arg_extremum(self.data, dim[0], op)
        values = shape.TakeAlongDim.apply(self, indices=indices, dim=dim[0])
        if not keepdim:
            values = values.squeeze(dim[0])
            indices = indices.squeeze(dim[0])
        return MinMaxResult(values, Tensor(indices))

    def argmax(self, dim=None, keepdim=False):
        return Tensor(reduction.arg_reduce(self.data, dim, keepdim, np.argmax))

    def argmin(self, dim=None, keepdim=False):
        return Tensor(reduction.arg_reduce(self.data, dim, keepdim, np.argmin))

    # ----- shape ---------------------------------------------------------------------------
    def reshape(self, *new_shape):
        return shape.Reshape.apply(self, new_shape=shape.parse_shape(new_shape, self.shape))

    view = reshape

    def flatten(self, start_dim=0, end_dim=-1):
        return shape.Reshape.apply(
            self, new_shape=shape.flattened_shape(self.shape, start_dim, end_dim)
        )

    def permute(self, *dims):
        return shape.Permute.apply(self, dims=shape.parse_permutation(dims, self.ndim))

    def transpose(self, dim0, dim1):
        return shape.Permute.apply(self, dims=shape.swap_permutation(self.ndim, dim0, dim1))

    @property
    def T(self):
        return shape.Permute.apply(self, dims=tuple(reversed(range(self.ndim))))

    def squeeze(self, dim=None):
        return shape.Reshape.apply(self, new_shape=shape.squeezed_shape(self.shape, dim))

    def unsqueeze(self, dim):
        return shape.Reshape.apply(self, new_shape=shape.unsqueezed_shape(self.shape, dim))

    def __getitem__(self, index):
        index = shape.normalize_index(index)
        split = shape.split_integer_index(index)
        if split is not None:  # integers first, then arrays and masks, as in PyTorch
            return self[split[0]][split[1]]
        return shape.GetItem.apply(self, index=index)

    def __iter__(self):
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))
