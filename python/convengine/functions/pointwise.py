"""Element-wise functions: exp, log, sqrt, abs, clamp, relu, where, and dtype casts."""

import numpy as np

from ..autograd import Function
from ..backends import cpu
from .arithmetic import float_result, unbroadcast


class Exp(Function):
    def forward(self, x):
        out = float_result(cpu.exp(x), x)
        self.out = out if self.needs_input_grad[0] else None
        return out

    def backward(self, grad):
        return cpu.mul(grad, self.out)  # d exp(x) = exp(x)


class Log(Function):
    def forward(self, x):
        self.x = x if self.needs_input_grad[0] else None
        with np.errstate(divide="ignore", invalid="ignore"):
            return float_result(np.log(x), x)

    def backward(self, grad):
        return cpu.div(grad, self.x)


class Sqrt(Function):
    def forward(self, x):
        with np.errstate(invalid="ignore"):
            out = float_result(np.sqrt(x), x)
        self.out = out if self.needs_input_grad[0] else None
        return out

    def backward(self, grad):
        with np.errstate(divide="ignore"):
            return grad / (2 * self.out)


class Abs(Function):
    def forward(self, x):
        self.sign = np.sign(x) if self.needs_input_grad[0] else None
        return np.abs(x)

    def backward(self, grad):
        return grad * self.sign  # PyTorch's convention: the gradient at 0 is 0


class Relu(Function):
    def forward(self, x):
        self.x = x if self.needs_input_grad[0] else None
        return cpu.relu(x)

    def backward(self, grad):
        return cpu.relu_backward(grad, self.x)


class Clamp(Function):
    """Limits x to [low, high] (either may be None); the gradient passes where x is inside.

    As in PyTorch, min > max gives max everywhere (and no gradient).
    """

    def forward(self, x, low=None, high=None):
        inside = np.ones(x.shape, dtype=bool)
        if low is not None:
            inside &= x >= low
        if high is not None:
            inside &= x <= high
        self.inside = inside if self.needs_input_grad[0] else None
        return float_result(np.clip(x, low, high), x)

    def backward(self, grad):
        return np.where(self.inside, grad, np.zeros_like(grad))


class Where(Function):
    """out = a where condition else b, with broadcasting; condition gets no gradient."""

    def forward(self, condition, a, b):
        condition = np.asarray(condition)
        if condition.dtype != np.bool_:
            raise TypeError(f"where: condition must be boolean, got dtype {condition.dtype}")
        try:
            out_shape = np.broadcast_shapes(condition.shape, np.shape(a), np.shape(b))
        except ValueError:
            raise ValueError(
                f"where: shapes {condition.shape} (condition), {np.shape(a)} and "
                f"{np.shape(b)} do not broadcast"
            ) from None
        self.condition = condition
        self.a_shape, self.b_shape, self.out_shape = np.shape(a), np.shape(b), out_shape
        return float_result(np.where(condition, a, b), a, b)

    def backward(self, grad):
        _, need_a, need_b = self.needs_input_grad
        zero = np.zeros_like(grad)
        return (None,
                unbroadcast(np.where(self.condition, grad, zero), self.a_shape) if need_a else None,
                unbroadcast(np.where(self.condition, zero, grad), self.b_shape) if need_b else None)


class Cast(Function):
    """Converts to another dtype; the gradient converts back."""

    def forward(self, x, dtype):
        self.source_dtype = x.dtype
        if self.needs_input_grad[0] and dtype.kind != "f":
            # The result leaves the graph: integer tensors carry no gradient.
            self.needs_input_grad = (False,)
        return x.astype(dtype, copy=False)

    def backward(self, grad):
        return grad.astype(self.source_dtype)
