"""Arithmetic with NumPy broadcasting: add, sub, mul, div, pow, neg, matmul."""

import numpy as np

from ..autograd import Function
from ..backends import cpu


def unbroadcast(grad, shape):
    """Sums `grad` over the axes that broadcasting added or stretched, so it has `shape`."""
    if grad.shape == shape:
        return grad
    leading = grad.ndim - len(shape)
    if leading:
        grad = grad.sum(axis=tuple(range(leading)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def float_result(out, *operands):
    """`out` in PyTorch's dtype where NumPy's promotion differs: float32 unless float64 took part.

    NumPy gives float64 for int / int, int * Python float or exp(int); PyTorch gives its default
    float dtype, float32. A float64 array operand keeps float64 (Python scalars never decide).
    """
    if out.dtype == np.float64 and not any(
            isinstance(x, np.ndarray) and x.dtype == np.float64 for x in operands):
        return out.astype(np.float32)
    return out


class _Binary(Function):
    """Base of the element-wise binary operations: checks that the shapes broadcast."""

    op = "binary"

    def check_broadcast(self, a, b):
        self.a_shape, self.b_shape = np.shape(a), np.shape(b)
        try:
            np.broadcast_shapes(self.a_shape, self.b_shape)
        except ValueError:
            raise ValueError(
                f"{self.op}: shapes {self.a_shape} and {self.b_shape} do not broadcast"
            ) from None


class Add(_Binary):
    op = "add"

    def forward(self, a, b):
        self.check_broadcast(a, b)
        return float_result(cpu.add(a, b), a, b)

    def backward(self, grad):
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(grad, self.a_shape) if need_a else None,
                unbroadcast(grad, self.b_shape) if need_b else None)


class Sub(_Binary):
    op = "sub"

    def forward(self, a, b):
        self.check_broadcast(a, b)
        return float_result(cpu.sub(a, b), a, b)

    def backward(self, grad):
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(grad, self.a_shape) if need_a else None,
                unbroadcast(-grad, self.b_shape) if need_b else None)


class Mul(_Binary):
    op = "mul"

    def forward(self, a, b):
        self.check_broadcast(a, b)
        need_a, need_b = self.needs_input_grad
        self.a = a if need_b else None  # d(a*b)/db = a
        self.b = b if need_a else None  # d(a*b)/da = b
        return float_result(cpu.mul(a, b), a, b)

    def backward(self, grad):
        need_a, need_b = self.needs_input_grad
        return (unbroadcast(cpu.mul(grad, self.b), self.a_shape) if need_a else None,
                unbroadcast(cpu.mul(grad, self.a), self.b_shape) if need_b else None)


class Div(_Binary):
    op = "div"

    def forward(self, a, b):
        self.check_broadcast(a, b)
        out = float_result(cpu.div(a, b), a, b)
        need_a, need_b = self.needs_input_grad
        self.b = b if (need_a or need_b) else None
        self.out = out if need_b else None  # d(a/b)/db = -a/b^2 = -out/b
        return out

    def backward(self, grad):
        need_a, need_b = self.needs_input_grad
        grad_over_b = cpu.div(grad, self.b)
        return (unbroadcast(grad_over_b, self.a_shape) if need_a else None,
                unbroadcast(-grad_over_b * self.out, self.b_shape) if need_b else None)


class Pow(_Binary):
    """base ** exponent, either of which may be a tensor."""

    op = "pow"

    def forward(self, base, exponent):
        self.check_broadcast(base, exponent)
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            out = float_result(np.power(base, exponent), base, exponent)
        need_base, need_exp = self.needs_input_grad
        if need_base or need_exp:
            self.base, self.exponent = base, exponent
        self.out = out if need_exp else None
        return out

    def backward(self, grad):
        need_base, need_exp = self.needs_input_grad
        base, exponent = self.base, self.exponent
        grad_base = grad_exp = None
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            if need_base:
                # d/dbase = exponent * base^(exponent-1); 0 where the exponent is 0
                local = np.where(np.asarray(exponent) == 0, 0.0,
                                 exponent * np.power(base, np.asarray(exponent) - 1))
                grad_base = unbroadcast(grad * local.astype(grad.dtype, copy=False),
                                        self.a_shape)
            if need_exp:
                # d/dexponent = out * log(base); PyTorch's convention: 0 where base == 0 and
                # exponent >= 0 (where out * log(base) would be 0 * -inf)
                zero = (np.asarray(base) == 0) & (np.asarray(exponent) >= 0)
                local = np.where(zero, 0.0, self.out * np.log(base))
                grad_exp = unbroadcast(grad * local.astype(grad.dtype, copy=False),
                                       self.b_shape)
        return grad_base, grad_exp


class Neg(Function):
    def forward(self, x):
        return np.negative(x)

    def backward(self, grad):
        return -grad


class MatMul(Function):
    """Matrix product with NumPy/PyTorch semantics: 1-D operands and batch broadcasting."""

    def forward(self, a, b):
        a, b = np.asarray(a), np.asarray(b)
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(
                f"matmul: both operands need at least 1 dimension, got shapes {a.shape} "
                f"and {b.shape}"
            )
        inner_a = a.shape[-1]
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if inner_a != inner_b:
            raise ValueError(
                f"matmul: shapes {a.shape} and {b.shape} do not align: inner dimensions "
                f"{inner_a} and {inner_b} differ"
            )
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"matmul: batch dimensions of shapes {a.shape} and {b.shape} do not broadcast"
            ) from None
        need_a, need_b = self.needs_input_grad
        self.a = a if need_b else None
        self.b = b if need_a else None
        self.a_shape, self.b_shape = a.shape, b.shape
        return float_result(cpu.matmul(a, b), a, b)

    def backward(self, grad):
        need_a, need_b = self.needs_input_grad
        # Promote 1-D operands to matrices, so that one rule covers every case:
        # (.., M, K) @ (.., K, N) -> (.., M, N);  dA = dC @ B^T,  dB = A^T @ dC.
        a_mat = (1,) + self.a_shape if len(self.a_shape) == 1 else self.a_shape
        b_mat = self.b_shape + (1,) if len(self.b_shape) == 1 else self.b_shape
        grad_mat = grad  # (.., M, N) with M or N dropped where an operand was 1-D
        if len(self.b_shape) == 1:
            grad_mat = np.expand_dims(grad_mat, -1)
        if len(self.a_shape) == 1:
            grad_mat = np.expand_dims(grad_mat, -2)
        grad_a = grad_b = None
        if need_a:
            b = self.b.reshape(b_mat)
            grad_a = unbroadcast(cpu.matmul(grad_mat, np.swapaxes(b, -1, -2)), a_mat)
            grad_a = grad_a.reshape(self.a_shape)
        if need_b:
            a = self.a.reshape(a_mat)
            grad_b = unbroadcast(cpu.matmul(np.swapaxes(a, -1, -2), grad_mat), b_mat)
            grad_b = grad_b.reshape(self.b_shape)
        return grad_a, grad_b
