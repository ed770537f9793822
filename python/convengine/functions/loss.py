"""Loss functions (PyTorch's functional forms and semantics).

Classification losses work on logits through a log-sum-exp shifted by the row maximum, so
large logits never overflow: cross_entropy is one fused Function whose backward is
softmax - target (weighted, smoothed). Every loss checks its arguments and names the bad one.
Soft-max and sigmoid inside losses are functions.activation's (C++ kernels for float32).

Shapes: input (N, C) or (N, C, d1, ..., dk) with classes on dim 1; class-index targets
(N,) or (N, d1, ..., dk); element-wise losses need target.shape == input.shape.
"""

import numbers

import numpy as np

from ..autograd import Function
from ..creation import as_tensor
from ..tensor import Tensor
from .activation import Sigmoid, Softmax
from .shape import TakeAlongDim

__all__ = ["CrossEntropyFunction",
           "NllLossFunction", "BinaryCrossEntropyFunction", "BCEWithLogitsFunction",
           "PointwiseLossFunction", "stable_log_softmax", "cross_entropy", "nll_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "mse_loss", "l1_loss",
           "smooth_l1_loss", "huber_loss", "dice_loss", "sigmoid_focal_loss", "focal_loss"]

_REDUCTIONS = ("none", "mean", "sum")


def _check_reduction(reduction, op):
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op}: reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def stable_log_softmax(x, axis):
    """log(softmax(x)) along axis via x - max - log(sum(exp(x - max)))."""
    shifted = x - x.max(axis=axis, keepdims=True)
    with np.errstate(under="ignore"):
        return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


# ----- numerically stable helpers on raw arrays (BCE with logits) ---------------------------


def _sigmoid(x):
    # exp of a non-positive number only: no overflow for large |x|
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype, copy=False)


def _softplus_neg(x):
    """log(1 + exp(-x)), stably."""
    return np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))


# ----- argument checks --------------------------------------------------------------------------


def _float_input(input, op, name="input"):
    input = as_tensor(input)
    if input.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got dtype {input.dtype}")
    return input


def _class_input(input, op):
    input = _float_input(input, op)
    if input.ndim < 1:
        raise ValueError(f"{op}: input must have a class dimension, got shape {input.shape}")
    return input


def _class_weight(weight, num_classes, op):
    if weight is None:
        return None
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
    if w.shape != (num_classes,):
        raise ValueError(f"{op}: weight must have one entry per class, shape ({num_classes},), "
                         f"got {w.shape}")
    return w


def _class_targets(input, target, ignore_index, op):
    """Checks class-index targets against input (N, C, *) and returns them as int64."""
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    if t.dtype.kind not in "iub":
        raise TypeError(f"{op}: target must hold integer class indices, got dtype {t.dtype} "
                        f"(for class probabilities pass a float target of the input's shape)")
    expected = (input.shape[0],) + input.shape[2:]
    if t.shape != expected:
        raise ValueError(f"{op}: target shape {t.shape} does not match input shape "
                         f"{input.shape}; expected {expected} (N, d1, ...)")
    t = t.astype(np.int64, copy=False)
    c = input.shape[1]
    bad = ((t < 0) | (t >= c)) & (t != ignore_index)
    if bad.any():
        value = int(t[bad].flat[0])
        raise ValueError(f"{op}: target holds class index {value}, out of range [0, {c}) for "
                         f"an input with {c} classes (ignore_index={ignore_index})")
    return t


def _reduce(loss, reduction, denominator=None):
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    with np.errstate(divide="ignore", invalid="ignore"):
        return total / (loss.size if denominator is None else denominator)


def _grad_scale(grad, reduction, shape, denominator):
    """The upstream gradient per element of the unreduced loss."""
    if reduction == "none":
        return grad
    if reduction == "sum":
        return np.broadcast_to(grad, shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.broadcast_to(grad / denominator, shape)


def _expand_class(vector, ndim):
    """(C,) -> (1, C, 1, ..., 1) for an (N, C, *) tensor."""
    return vector.reshape((1, -1) + (1,) * (ndim - 2))


# ----- cross entropy / nll ----------------------------------------------------------------------


class CrossEntropyFunction(Function):
    """Fused log_softmax + weighted, label-smoothed NLL over classes on axis 1.

    Class-index target (N, *): loss_i = (1 - eps) * w[y_i] * -logp[i, y_i]
        + eps / C * sum_c w_c * -logp[i, c], zero where y_i == ignore_index; 'mean' divides by
        sum_i w[y_i] over the non-ignored elements (PyTorch's convention).
    Probability target (N, C, *): loss_i = -sum_c w_c t'_ic logp_ic, t' = (1-eps) t + eps/C;
        'mean' divides by N * prod(d).
    The gradient with respect to the logits is A - softmax * sum_c A, A = d loss / d logp.
    """

    def forward(self, x, target, weight=None, ignore_index=-100, reduction="mean",
                label_smoothing=0.0, probabilities=False):
        dtype = x.dtype
        c = x.shape[1]
        logp = stable_log_softmax(x, 1)  # (N, C, *)
        eps = float(label_smoothing)
        w = None if weight is None else weight.astype(dtype, copy=False)
        if probabilities:
            t = target.astype(dtype, copy=False)
            if eps:
                t = t * (1 - eps) + eps / c
            coeff = -t if w is None else -t * _expand_class(w, x.ndim)  # A = dL/dlogp
            loss = (coeff * logp).sum(axis=1)
            denominator = loss.size
            self.t = t
        else:
            valid = target != ignore_index
            safe = np.where(valid, target, 0)
            wy = valid.astype(dtype) if w is None else w[safe] * valid  # (N, *)
            picked = np.take_along_axis(logp, safe[:, None], axis=1)[:, 0]
            loss = -wy * picked
            if eps:
                wsum = logp.sum(axis=1) if w is None else (logp * _expand_class(w, x.ndim)).sum(1)
                loss = (1 - eps) * loss - (eps / c) * wsum * valid
            denominator = wy.sum()
            self.valid, self.safe, self.wy = valid, safe, wy
        self.logp, self.w, self.eps, self.c = logp, w, eps, c
        self.reduction, self.denominator = reduction, denominator
        self.probabilities = probabilities
        return np.asarray(_reduce(loss, reduction, denominator), dtype=dtype)

    def backward(self, grad):
        need_x = self.needs_input_grad[0]
        need_t = len(self.needs_input_grad) > 1 and self.needs_input_grad[1]
        logp, w, eps, c = self.logp, self.w, self.eps, self.c
        loss_shape = (logp.shape[0],) + logp.shape[2:]
        g = _grad_scale(grad, self.reduction, loss_shape, self.denominator)[:, None]  # (N,1,*)
        p = np.exp(logp)
        grad_x = grad_t = None
        if self.probabilities:
            wt = self.t if w is None else self.t * _expand_class(w, logp.ndim)
            if need_x:
                # A = -w t'; dx = g (A - p sum_c A) = g (p sum_c(w t') - w t')
                grad_x = g * (p * wt.sum(axis=1, keepdims=True) - wt)
            if need_t:
                wl = logp if w is None else logp * _expand_class(w, logp.ndim)
                grad_t = -g * wl * (1 - eps)
            return grad_x, grad_t
        valid = self.valid[:, None]
        # sum_c A_ic = -(1 - eps) w[y_i] - eps / C * valid_i * sum(w)
        wsum = c if w is None else w.sum()
        total = -(1 - eps) * self.wy[:, None] - (eps / c) * wsum * valid
        grad_x = -p * total  # - p * sum_c A
        if eps:
            w_b = 1.0 if w is None else _expand_class(w, logp.ndim)
            grad_x -= (eps / c) * w_b * valid
        onehot_value = np.take_along_axis(grad_x, self.safe[:, None], axis=1)
        np.put_along_axis(grad_x, self.safe[:, None],
                          onehot_value - (1 - eps) * self.wy[:, None], axis=1)
        grad_x *= g
        return grad_x.astype(logp.dtype, copy=False), None


class NllLossFunction(Function):
    """loss_i = -w[y_i] * input[i, y_i] (input holds log-probabilities), 0 where ignored."""

    def forward(self, x, target, weight=None, ignore_index=-100, reduction="mean"):
        valid = target != ignore_index
        safe = np.where(valid, target, 0)
        wy = valid.astype(x.dtype) if weight is None else weight.astype(x.dtype)[safe] * valid
        loss = -wy * np.take_along_axis(x, safe[:, None], axis=1)[:, 0]
        self.x_shape, self.safe, self.wy, self.reduction = x.shape, safe, wy, reduction
        self.denominator = wy.sum()
        return np.asarray(_reduce(loss, reduction, self.denominator), dtype=x.dtype)

    def backward(self, grad):
        g = _grad_scale(grad, self.reduction, self.wy.shape, self.denominator)
        grad_x = np.zeros(self.x_shape, dtype=self.wy.dtype)
        np.put_along_axis(grad_x, self.safe[:, None], (-self.wy * g)[:, None], axis=1)
        return grad_x, None


def _class_loss_args(input, target, weight, ignore_index, reduction, op):
    _check_reduction(reduction, op)
    input = _class_input(input, op)
    unbatched = input.ndim == 1
    if unbatched:
        input = input.reshape(1, -1)
        target = target.reshape(1) if isinstance(target, Tensor) else np.reshape(target, (1,))
    w = _class_weight(weight, input.shape[1], op)
    return input, target, w, unbatched


def cross_entropy(input, target, weight=None, size_average=None, ignore_index=-100,
                  reduce=None, reduction="mean", label_smoothing=0.0):
    """Cross entropy between logits input (N, C, *) and class indices (N, *) or class
    probabilities (N, C, *), as torch.nn.functional.cross_entropy.

    weight (C,): per-class weights. ignore_index: targets with this value add nothing (and
    are left out of the 'mean'). label_smoothing in [0, 1]: mixes the target with the uniform
    distribution. N-d targets serve segmentation: input (N, C, H, W), target (N, H, W).
    """
    op = "cross_entropy"
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce are deprecated; use reduction")
    if not isinstance(label_smoothing, numbers.Real) or not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"{op}: label_smoothing must be between 0.0 and 1.0, got "
                         f"{label_smoothing}")
    input, target, w, unbatched = _class_loss_args(input, target, weight, ignore_index,
                                                   reduction, op)
    t_data = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t_data.dtype.kind == "f":
        if t_data.shape != input.shape:
            raise ValueError(f"{op}: a probability target must have the input's shape "
                             f"{input.shape}, got {t_data.shape}")
        target = target if isinstance(target, Tensor) else Tensor(t_data)
        out = CrossEntropyFunction.apply(input, target, weight=w, reduction=reduction,
                                         label_smoothing=label_smoothing, probabilities=True)
    else:
        t = _class_targets(input, target, ignore_index, op)
        out = CrossEntropyFunction.apply(input, t, weight=w, ignore_index=ignore_index,
                                         reduction=reduction, label_smoothing=label_smoothing)
    if unbatched and reduction == "none":
        out = out.reshape(())
    return out


def nll_loss(input, target, weight=None, size_average=None, ignore_index=-100, reduce=None,
             reduction="mean"):
    """Negative log-likelihood of class indices (N, *) under log-probabilities (N, C, *)."""
    op = "nll_loss"
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce are deprecated; use reduction")
    input, target, w, unbatched = _class_loss_args(input, target, weight, ignore_index,
                                                   reduction, op)
    t = _class_targets(input, target, ignore_index, op)
    out = NllLossFunction.apply(input, t, weight=w, ignore_index=ignore_index,
                                reduction=reduction)
    if unbatched and reduction == "none":
        out = out.reshape(())
    return out


# ----- binary losses ----------------------------------------------------------------------------


def _same_shape(input, target, op):
    input = _float_input(input, op)
    target = _float_input(target, op, "target")
    if target.shape != input.shape:
        raise ValueError(f"{op}: target shape {target.shape} differs from input shape "
                         f"{input.shape}; they must be the same")
    return input, target


def _broadcast_weight(weight, shape, op, name="weight"):
    if weight is None:
        return None
    w = np.asarray(weight.data if isinstance(weight, Tensor) else weight)
    try:
        if np.broadcast_shapes(w.shape, shape) != tuple(shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"{op}: {name} of shape {w.shape} does not broadcast to the input's "
                         f"shape {tuple(shape)}") from None
    return w


class BinaryCrossEntropyFunction(Function):
    """-w (t log x + (1 - t) log(1 - x)), logs clamped at -100 as in PyTorch."""

    def forward(self, x, t, weight=None, reduction="mean"):
        with np.errstate(divide="ignore"):
            log_x = np.maximum(np.log(x), -100)
            log_1mx = np.maximum(np.log1p(-x), -100)
        loss = -(t * log_x + (1 - t) * log_1mx)
        if weight is not None:
            loss = loss * weight
        self.x, self.t, self.w, self.reduction = x, t, weight, reduction
        self.log_x, self.log_1mx = log_x, log_1mx
        return np.asarray(_reduce(loss, reduction), dtype=x.dtype)

    def backward(self, grad):
        need_x, need_t = self.needs_input_grad
        x, t = self.x, self.t
        g = _grad_scale(grad, self.reduction, x.shape, x.size)
        if self.w is not None:
            g = g * self.w
        grad_x = grad_t = None
        if need_x:
            grad_x = g * (x - t) / np.maximum(x * (1 - x), 1e-12)
        if need_t:
            grad_t = g * (self.log_1mx - self.log_x)
        return grad_x, grad_t


class BCEWithLogitsFunction(Function):
    """w [(1 - t) x + (1 + (pw - 1) t) log(1 + exp(-x))], stably (never exp of a positive)."""

    def forward(self, x, t, weight=None, pos_weight=None, reduction="mean"):
        sp = _softplus_neg(x)  # log(1 + exp(-x))
        if pos_weight is None:
            loss = (1 - t) * x + sp
        else:
            loss = (1 - t) * x + (1 + (pos_weight - 1) * t) * sp
        if weight is not None:
            loss = loss * weight
        self.x, self.t, self.sp, self.w, self.pw = x, t, sp, weight, pos_weight
        self.reduction = reduction
        return np.asarray(_reduce(loss, reduction), dtype=x.dtype)

    def backward(self, grad):
        need_x, need_t = self.needs_input_grad
        x, t, pw = self.x, self.t, self.pw
        g = _grad_scale(grad, self.reduction, x.shape, x.size)
        if self.w is not None:
            g = g * self.w
        grad_x = grad_t = None
        if need_x:
            log_weight = 1.0 if pw is None else 1 + (pw - 1) * t
            grad_x = g * ((1 - t) - log_weight * _sigmoid(-x))
        if need_t:
            grad_t = g * (-x if pw is None else -x + (pw - 1) * self.sp)
        return grad_x, grad_t


def binary_cross_entropy(input, target, weight=None, size_average=None, reduce=None,
                         reduction="mean"):
    """Binary cross entropy between probabilities input (in [0, 1]) and target, same shape."""
    op = "binary_cross_entropy"
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce are deprecated; use reduction")
    _check_reduction(reduction, op)
    input, target = _same_shape(input, target, op)
    if input.data.size and (input.data.min() < 0 or input.data.max() > 1):
        raise ValueError(f"{op}: all elements of input should be between 0 and 1 (pass logits "
                         f"to binary_cross_entropy_with_logits)")
    w = _broadcast_weight(weight, input.shape, op)
    return BinaryCrossEntropyFunction.apply(input, target, weight=w, reduction=reduction)


def binary_cross_entropy_with_logits(input, target, weight=None, size_average=None,
                                     reduce=None, reduction="mean", pos_weight=None):
    """Sigmoid + binary cross entropy in one stable step; pos_weight (broadcast along the
    last, class, dimension) weights the positive examples."""
    op = "binary_cross_entropy_with_logits"
    if size_average is not None or reduce is not None:
        raise ValueError(f"{op}: size_average and reduce are deprecated; use reduction")
    _check_reduction(reduction, op)
    input, target = _same_shape(input, target, op)
    w = _broadcast_weight(weight, input.shape, op)
    pw = _broadcast_weight(pos_weight, input.shape, op, "pos_weight")
    return BCEWithLogitsFunction.apply(input, target, weight=w, pos_weight=pw,
                                       reduction=reduction)


# ----- element-wise regression losses ----------------------------------------------------------


class PointwiseLossFunction(Function):
    """A loss f(d) of d = input - target element by element, then reduced.

    kind: 'mse' (d^2), 'l1' (|d|), 'smooth_l1' (0.5 d^2 / beta inside |d| < beta, else
    |d| - 0.5 beta) or 'huber' (0.5 d^2 inside |d| < delta, else delta (|d| - 0.5 delta)).
    """

    def forward(self, x, t, kind, reduction="mean", beta=1.0):
        d = x - t
        a = np.abs(d)
        if kind == "mse":
            loss, slope = d * d, 2 * d
        elif kind == "l1":
            loss, slope = a, np.sign(d)
        elif kind == "smooth_l1":
            if beta == 0:
                loss, slope = a, np.sign(d)
            else:
                inside = a < beta
                loss = np.where(inside, 0.5 * d * d / beta, a - 0.5 * beta)
                slope = np.where(inside, d / beta, np.sign(d))
        elif kind == "huber":
            inside = a < beta
            loss = np.where(inside, 0.5 * d * d, beta * (a - 0.5 * beta))
            slope = np.where(inside, d, beta * np.sign(d))
        else:  # pragma: no cover - internal
            raise ValueError(kind)
        self.slope, self.reduction = slope.astype(x.dtype, copy=False), reduction
        return np.asarray(_reduce(loss, reduction), dtype=x.dtype)

    def backward(self, grad):
        need_x, need_t = self.needs_input_grad
        g = _grad_scale(grad, self.reduction, self.slope.shape, self.slope.size) * self.slope
        return (g if need_x else None), (-g if need_t else None)


def _pointwise(input, target, kind, reduction, op, beta=1.0):
    _check_reduction(reduction, op)
    input, target = _same_shape(input, target, op)
    return PointwiseLossFunction.apply(input, target, kind=kind, reduction=reduction, beta=beta)


def mse_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean squared error (input - target)^2."""
    return _pointwise(input, target, "mse", reduction, "mse_loss")


def l1_loss(input, target, size_average=None, reduce=None, reduction="mean"):
    """Mean absolute error |input - target|."""
    return _pointwise(input, target, "l1", reduction, "l1_loss")


def smooth_l1_loss(input, target, size_average=None, reduce=None, reduction="mean", beta=1.0):
    """Quadratic below beta, linear above (beta=0 is l1_loss)."""
    if not isinstance(beta, numbers.Real) or beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    return _pointwise(input, target, "smooth_l1", reduction, "smooth_l1_loss", beta)


def huber_loss(input, target, reduction="mean", delta=1.0):
    """Quadratic below delta, delta-scaled linear above."""
    if not isinstance(delta, numbers.Real) or delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    return _pointwise(input, target, "huber", reduction, "huber_loss", delta)


# ----- segmentation and imbalance losses --------------------------------------------------------


def dice_loss(input, target, *, smooth=1.0, activation="auto", include_background=True,
              weight=None, ignore_index=None, reduction="mean"):
    """Soft Dice loss for 2D (N, C, H, W) or 3D (N, C, D, H, W) segmentation logits.

    target: class indices (N, *spatial) or a one-hot / probability map of input's shape.
    activation: 'softmax' over classes, 'sigmoid' per channel, None (input already holds
    probabilities) or 'auto' (softmax for C > 1, sigmoid for C = 1).
    Per sample and class: dice = (2 sum(p t) + smooth) / (sum(p) + sum(t) + smooth); the loss
    is 1 - dice averaged over classes (with weight (C,), a weighted mean; without background
    class 0 if include_background=False), then reduced over the batch ('mean', 'sum' or 'none'
    giving (N,)). ignore_index (index targets only) masks those pixels out of both sums.
    """
    op = "dice_loss"
    _check_reduction(reduction, op)
    input = _class_input(input, op)
    if input.ndim < 3:
        raise ValueError(f"{op}: input must be (N, C, *spatial) with at least one spatial "
                         f"dimension, got shape {input.shape}")
    if not isinstance(smooth, numbers.Real) or smooth < 0:
        raise ValueError(f"{op}: smooth must be non-negative, got {smooth}")
    n, c = input.shape[:2]
    if activation == "auto":
        activation = "softmax" if c > 1 else "sigmoid"
    if activation == "softmax":
        probs = Softmax.apply(input, dim=1)
    elif activation == "sigmoid":
        probs = Sigmoid.apply(input)
    elif activation is None:
        probs = input
    else:
        raise ValueError(f"{op}: activation must be 'auto', 'softmax', 'sigmoid' or None, got "
                         f"{activation!r}")
    t = np.asarray(target.data if isinstance(target, Tensor) else target)
    mask = None
    if t.dtype.kind in "iub" and t.shape != input.shape:
        index_target = t
        if ignore_index is not None:
            mask = index_target != ignore_index
            index_target = np.where(mask, index_target, 0)
        if c == 1:
            onehot = (index_target[:, None] > 0).astype(input.dtype)
            _class_targets(input, index_target.clip(0, 0), -100, op)  # shape check
        else:
            index_target = _class_targets(input, index_target, -100, op)
            onehot = (index_target[:, None] == np.arange(c).reshape((1, c) + (1,) * (
                input.ndim - 2))).astype(input.dtype)
    else:
        if t.shape != input.shape:
            raise ValueError(f"{op}: target shape {t.shape} matches neither input shape "
                             f"{input.shape} (one-hot) nor {(n,) + input.shape[2:]} (indices)")
        onehot = t.astype(input.dtype)
    if mask is not None:
        m = mask[:, None].astype(input.dtype)
        probs = probs * m
        onehot = onehot * m
    axes = tuple(range(2, input.ndim))
    intersection = (probs * onehot).sum(dim=axes)  # (N, C)
    cardinality = probs.sum(dim=axes) + onehot.sum(axis=axes)
    dice = (intersection * 2.0 + smooth) / (cardinality + smooth)
    per_class = 1.0 - dice  # (N, C)
    cls_w = np.ones(c, dtype=input.dtype) if weight is None else _class_weight(weight, c, op)
    cls_w = np.asarray(cls_w, dtype=input.dtype).copy()
    if not include_background:
        if c == 1:
            raise ValueError(f"{op}: include_background=False needs more than one class")
        cls_w[0] = 0
    per_sample = (per_class * Tensor(cls_w)).sum(dim=1) / float(cls_w.sum())  # (N,)
    if reduction == "none":
        return per_sample
    return per_sample.sum() if reduction == "sum" else per_sample.mean()


def sigmoid_focal_loss(inputs, targets, alpha=0.25, gamma=2.0, reduction="none"):
    """Focal loss for binary / multi-label logits (Lin et al., 2017; torchvision's form):
    BCE-with-logits scaled by (1 - p_t)^gamma and alpha_t, which down-weights easy examples."""
    op = "sigmoid_focal_loss"
    _check_reduction(reduction, op)
    inputs, targets = _same_shape(inputs, targets, op)
    if not isinstance(gamma, numbers.Real) or gamma < 0:
        raise ValueError(f"{op}: gamma must be non-negative, got {gamma}")
    p = Sigmoid.apply(inputs)
    ce = binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma if gamma else ce
    if alpha is not None and alpha >= 0:
        loss = (targets * alpha + (1 - targets) * (1 - alpha)) * loss
    if reduction == "none":
        return loss
    return loss.mean() if reduction == "mean" else loss.sum()


def focal_loss(input, target, gamma=2.0, weight=None, ignore_index=-100, reduction="mean"):
    """Multi-class focal loss on logits (N, C, *) and class indices (N, *):
    -w[y] (1 - p_y)^gamma log p_y; gamma=0 is cross_entropy. 'mean' divides by sum w[y]."""
    op = "focal_loss"
    if not isinstance(gamma, numbers.Real) or gamma < 0:
        raise ValueError(f"{op}: gamma must be non-negative, got {gamma}")
    input, target, w, unbatched = _class_loss_args(input, target, weight, ignore_index,
                                                   reduction, op)
    t = _class_targets(input, target, ignore_index, op)
    valid = t != ignore_index
    safe = np.where(valid, t, 0)
    logp = Softmax.apply(input, dim=1, log=True)
    logp_y = TakeAlongDim.apply(logp, indices=safe[:, None], dim=1).squeeze(1)  # (N, *)
    wy = valid.astype(input.dtype) if w is None else w.astype(input.dtype)[safe] * valid
    modulating = (1 - logp_y.exp()) ** gamma if gamma else 1.0
    loss = modulating * logp_y * Tensor(-wy)
    if unbatched and reduction == "none":
        return loss.reshape(())
    if reduction == "none":
        return loss
    return loss.sum() / float(wy.sum()) if reduction == "mean" else loss.sum()
