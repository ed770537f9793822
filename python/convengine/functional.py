"""Functional forms of the tensor operations (convengine.exp(x), convengine.cat([...]), ...)."""

from .creation import as_tensor
from .functions import pointwise, shape
from .tensor import Tensor

__all__ = ["add", "sub", "mul", "div", "pow", "neg", "matmul", "exp", "log", "sqrt", "abs",
           "clamp", "clip", "relu", "sigmoid", "tanh", "softmax", "log_softmax", "where", "sum",
           "mean", "var", "max", "min", "argmax", "argmin",
           "reshape", "flatten", "transpose", "permute", "squeeze", "unsqueeze", "cat",
           "concat", "stack", "pad"]


def add(input, other):
    return as_tensor(input) + other


def sub(input, other):
    return as_tensor(input) - other


def mul(input, other):
    return as_tensor(input) * other


def div(input, other):
    return as_tensor(input) / other


def pow(input, exponent):
    return input ** exponent if isinstance(input, Tensor) else as_tensor(exponent).__rpow__(input)


def neg(input):
    return -as_tensor(input)


def matmul(input, other):
    return as_tensor(input) @ other


def exp(input):
    return as_tensor(input).exp()


def log(input):
    return as_tensor(input).log()


def sqrt(input):
    return as_tensor(input).sqrt()


def abs(input):
    return as_tensor(input).abs()


def clamp(input, min=None, max=None):
    return as_tensor(input).clamp(min, max)


clip = clamp


def relu(input):
    return as_tensor(input).relu()


def sigmoid(input):
    return as_tensor(input).sigmoid()


def tanh(input):
    return as_tensor(input).tanh()


def softmax(input, dim, dtype=None):
    return as_tensor(input).softmax(dim, dtype)


def log_softmax(input, dim, dtype=None):
    return as_tensor(input).log_softmax(dim, dtype)


def where(condition, input, other):
    """Elements of input where condition holds, of other elsewhere (broadcast together)."""
    return pointwise.Where.apply(as_tensor(condition), input, other)


def sum(input, dim=None, keepdim=False, **kwargs):
    return as_tensor(input).sum(dim, keepdim, **kwargs)


def mean(input, dim=None, keepdim=False, **kwargs):
    return as_tensor(input).mean(dim, keepdim, **kwargs)


def var(input, dim=None, unbiased=None, keepdim=False, **kwargs):
    return as_tensor(input).var(dim, unbiased, keepdim, **kwargs)


def max(input, dim=None, keepdim=False, **kwargs):
    return as_tensor(input).max(dim, keepdim, **kwargs)


def min(input, dim=None, keepdim=False, **kwargs):
    return as_tensor(input).min(dim, keepdim, **kwargs)


def argmax(input, dim=None, keepdim=False):
    return as_tensor(input).argmax(dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return as_tensor(input).argmin(dim, keepdim)


def reshape(input, shape):
    return as_tensor(input).reshape(shape)


def flatten(input, start_dim=0, end_dim=-1):
    return as_tensor(input).flatten(start_dim, end_dim)


def transpose(input, dim0, dim1):
    return as_tensor(input).transpose(dim0, dim1)


def permute(input, dims):
    return as_tensor(input).permute(dims)


def squeeze(input, dim=None):
    return as_tensor(input).squeeze(dim)


def unsqueeze(input, dim):
    return as_tensor(input).unsqueeze(dim)


def cat(tensors, dim=0):
    """Concatenates tensors along an existing dimension."""
    return shape.Cat.apply(*[as_tensor(t) for t in tensors], dim=dim)


concat = cat


def stack(tensors, dim=0):
    """Stacks equal-shaped tensors along a new dimension."""
    return shape.Stack.apply(*[as_tensor(t) for t in tensors], dim=dim)


def pad(input, pad, mode="constant", value=0.0):
    """Pads with PyTorch's convention: `pad` lists (before, after) pairs from the last dim back.

    mode: 'constant' (with value), 'reflect', 'replicate' or 'circular'.
    """
    input = as_tensor(input)
    pairs = shape.parse_pad(pad, input.shape, mode)
    return shape.Pad.apply(input, pairs=pairs, mode=mode, value=value)
