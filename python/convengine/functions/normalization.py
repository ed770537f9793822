"""Normalisation: batch_norm, instance_norm, layer_norm, group_norm (PyTorch's functional forms).

BatchNorm is one fused Function (statistics, normalisation, affine and the running-statistics
update in forward; the closed-form gradient in backward), since it sits after every convolution
of a CNN. Layer, group and instance normalisation share the Normalize Function (zero mean, unit
variance over some axes) followed by a broadcast affine.
"""

import numbers

import numpy as np

from ..autograd import Function
from ..creation import as_tensor
from ..tensor import Tensor

__all__ = ["BatchNormFunction", "Normalize", "batch_norm", "instance_norm", "layer_norm",
           "group_norm"]


def _raw(t):
    return t.data if isinstance(t, Tensor) else t


class BatchNormFunction(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias over axes (N, *spatial), per channel.

    x is viewed as (N, C, L) with L = prod(spatial). In training the batch's statistics are
    used (biased variance) and the running ones updated in place (unbiased variance); in
    evaluation the running statistics are used.
    """

    def forward(self, x, weight, bias, running_mean=None, running_var=None, training=True,
                momentum=0.1, eps=1e-5):
        n, c = x.shape[0], x.shape[1]
        x3 = x.reshape(n, c, -1)  # (N, C, L)
        count = n * x3.shape[2]
        dtype = x.dtype
        if training:
            mean = x3.sum(axis=(0, 2), dtype=dtype) / count
            centered = x3 - mean[:, None]
            var = np.einsum("ncl,ncl->c", centered, centered) / count
            invstd = (1.0 / np.sqrt(var + eps)).astype(dtype)
            xhat = centered
            xhat *= invstd[:, None]  # (N, C, L), reusing the centred buffer
            if running_mean is not None and momentum is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
            if running_var is not None and momentum is not None:
                unbiased = var * (count / (count - 1)) if count > 1 else var
                running_var *= 1 - momentum
                running_var += momentum * unbiased
            self.batch_mean, self.batch_var = mean, var
        else:
            mean, var = running_mean.astype(dtype), running_var.astype(dtype)
            invstd = (1.0 / np.sqrt(var + eps)).astype(dtype)
            xhat = (x3 - mean[:, None]) * invstd[:, None]
        self.training = training
        self.x_shape = x.shape
        out = xhat * weight[:, None] if weight is not None else xhat.copy()
        if bias is not None:
            out += bias[:, None]
        if any(self.needs_input_grad):
            self.xhat, self.invstd, self.weight = xhat, invstd, weight
        return out.reshape(x.shape).astype(dtype, copy=False)

    def backward(self, grad):
        need_x, need_w, need_b = self.needs_input_grad
        n, c = self.x_shape[0], self.x_shape[1]
        g3 = grad.reshape(n, c, -1)
        count = g3.shape[0] * g3.shape[2]
        xhat = self.xhat
        sum_g = g3.sum(axis=(0, 2))  # (C,)
        sum_g_xhat = np.einsum("ncl,ncl->c", g3, xhat)  # (C,)
        grad_x = grad_w = grad_b = None
        if need_x:
            scale = self.invstd if self.weight is None else self.invstd * self.weight
            if self.training:
                # dx = w * invstd * (g - mean(g) - xhat * mean(g * xhat)), means over (N, L)
                grad_x = g3 - (sum_g / count)[:, None]
                grad_x -= xhat * (sum_g_xhat / count)[:, None]
                grad_x *= scale[:, None]
            else:
                grad_x = g3 * scale[:, None]
            grad_x = grad_x.reshape(self.x_shape)
        if need_w:
            grad_w = sum_g_xhat
        if need_b:
            grad_b = sum_g
        return grad_x, grad_w, grad_b


class Normalize(Function):
    """(x - mean) / sqrt(var + eps) over `axes` (biased variance), no affine."""

    def forward(self, x, axes, eps=1e-5):
        mean = x.mean(axis=axes, keepdims=True)
        centered = x - mean
        var = np.mean(centered * centered, axis=axes, keepdims=True)
        invstd = (1.0 / np.sqrt(var + eps)).astype(x.dtype)
        xhat = centered
        xhat *= invstd
        if self.needs_input_grad[0]:
            self.axes, self.xhat, self.invstd = axes, xhat, invstd
        return xhat

    def backward(self, grad):
        xhat, axes = self.xhat, self.axes
        mean_g = grad.mean(axis=axes, keepdims=True)
        mean_g_xhat = np.mean(grad * xhat, axis=axes, keepdims=True)
        return self.invstd * (grad - mean_g - xhat * mean_g_xhat)


def _check_input(input, op, min_dim=2):
    input = as_tensor(input)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: input must be floating point, got dtype {input.dtype}")
    if input.ndim < min_dim:
        raise ValueError(f"{op}: input must have at least {min_dim} dimensions (N, C, ...), "
                         f"got shape {input.shape}")
    return input


def _check_channel_vector(t, name, c, op):
    if t is None:
        return None
    shape = np.shape(_raw(t))
    if shape != (c,):
        raise ValueError(f"{op}: {name} must have shape ({c},) for {c} channels, got {shape}")
    return t


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalisation over (N, C, *): statistics per channel C.

    training=True: normalises with the batch's mean and biased variance and, when given,
    updates running_mean and running_var in place (running = (1 - momentum) * running +
    momentum * batch, with the unbiased variance). training=False: uses the running ones.
    """
    op = "batch_norm"
    input = _check_input(input, op)
    c = input.shape[1]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_channel_vector(t, name, c, op)
    if not training and (running_mean is None or running_var is None):
        raise ValueError(f"{op}: running_mean and running_var are required when training=False")
    if training:
        per_channel = input.data.size // c if c else 0
        if per_channel <= 1:
            raise ValueError(f"{op}: expected more than 1 value per channel when training, got "
                             f"input of shape {input.shape}")
    if momentum is not None and not 0 <= momentum <= 1:
        raise ValueError(f"{op}: momentum must lie in [0, 1], got {momentum}")
    return BatchNormFunction.apply(input, weight, bias, running_mean=_raw(running_mean),
                                   running_var=_raw(running_var), training=bool(training),
                                   momentum=momentum, eps=eps)


def _affine(out, weight, bias, channel_dims):
    """out * weight + bias, with (C,) vectors broadcast over `channel_dims` trailing axes."""
    shape = None
    if weight is not None:
        weight = as_tensor(weight)
        shape = (-1,) + (1,) * channel_dims
        out = out * weight.reshape(shape)
    if bias is not None:
        bias = as_tensor(bias)
        out = out + bias.reshape((-1,) + (1,) * channel_dims)
    return out


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Normalises each (sample, channel) over its spatial axes (N, C, *spatial)."""
    op = "instance_norm"
    input = _check_input(input, op, min_dim=3)
    n, c = input.shape[:2]
    for name, t in (("running_mean", running_mean), ("running_var", running_var),
                    ("weight", weight), ("bias", bias)):
        _check_channel_vector(t, name, c, op)
    spatial = tuple(range(2, input.ndim))
    if not use_input_stats:
        if running_mean is None or running_var is None:
            raise ValueError(f"{op}: running statistics are required when use_input_stats=False")
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    length = int(np.prod(input.shape[2:]))
    if length <= 1:
        raise ValueError(f"{op}: expected more than 1 spatial element when training, got input "
                         f"of shape {input.shape}")
    if running_mean is not None and running_var is not None and momentum is not None:
        x = input.data
        inst_mean = x.mean(axis=spatial)  # (N, C)
        inst_var = x.var(axis=spatial, ddof=1)
        rm, rv = _raw(running_mean), _raw(running_var)
        rm *= 1 - momentum
        rm += momentum * inst_mean.mean(axis=0)
        rv *= 1 - momentum
        rv += momentum * inst_var.mean(axis=0)
    out = Normalize.apply(input, axes=spatial, eps=eps)
    return _affine(out, weight, bias, len(spatial))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalises over the last len(normalized_shape) dimensions; weight and bias have
    normalized_shape."""
    op = "layer_norm"
    input = _check_input(input, op, min_dim=1)
    if isinstance(normalized_shape, numbers.Integral):
        normalized_shape = (normalized_shape,)
    normalized_shape = tuple(int(s) for s in normalized_shape)
    k = len(normalized_shape)
    if k == 0 or input.shape[-k:] != normalized_shape:
        raise ValueError(f"{op}: the input's trailing shape must be normalized_shape "
                         f"{normalized_shape}, got input of shape {input.shape}")
    for name, t in (("weight", weight), ("bias", bias)):
        if t is not None and np.shape(_raw(t)) != normalized_shape:
            raise ValueError(f"{op}: {name} must have shape {normalized_shape}, got "
                             f"{np.shape(_raw(t))}")
    out = Normalize.apply(input, axes=tuple(range(input.ndim - k, input.ndim)), eps=eps)
    if weight is not None:
        out = out * as_tensor(weight)
    if bias is not None:
        out = out + as_tensor(bias)
    return out


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalises each sample over groups of channels (N, C, *) -> C split into num_groups."""
    op = "group_norm"
    input = _check_input(input, op)
    n, c = input.shape[:2]
    if not isinstance(num_groups, numbers.Integral) or num_groups <= 0 or c % num_groups:
        raise ValueError(f"{op}: num_groups must be a positive divisor of the {c} channels, got "
                         f"{num_groups}")
    for name, t in (("weight", weight), ("bias", bias)):
        _check_channel_vector(t, name, c, op)
    grouped = input.reshape(n, num_groups, -1)  # (N, G, C/G * prod(spatial))
    out = Normalize.apply(grouped, axes=(2,), eps=eps).reshape(input.shape)
    return _affine(out, weight, bias, input.ndim - 2)
