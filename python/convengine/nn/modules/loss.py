"""Loss modules: thin wrappers that hold the options and call nn.functional."""

import numpy as np

from .. import functional as F
from ...tensor import Tensor
from .module import Module

__all__ = ["CrossEntropyLoss", "NLLLoss", "BCELoss", "BCEWithLogitsLoss", "MSELoss", "L1Loss",
           "SmoothL1Loss", "HuberLoss", "DiceLoss", "FocalLoss"]


class _Loss(Module):
    def __init__(self, reduction="mean"):
        super().__init__()
        if reduction not in ("none", "mean", "sum"):
            raise ValueError(f"{type(self).__name__}: reduction must be 'none', 'mean' or "
                             f"'sum', got {reduction!r}")
        self.reduction = reduction


class _WeightedLoss(_Loss):
    def __init__(self, weight=None, reduction="mean"):
        super().__init__(reduction)
        if weight is not None and not isinstance(weight, Tensor):
            weight = Tensor(np.asarray(weight, dtype=np.float32))
        self.register_buffer("weight", weight)


class CrossEntropyLoss(_WeightedLoss):
    """Cross entropy on logits (N, C, *) against class indices (N, *) or probabilities."""

    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean", label_smoothing=0.0):
        super().__init__(weight, reduction)
        self.ignore_index, self.label_smoothing = ignore_index, label_smoothing

    def forward(self, input, target):
        return F.cross_entropy(input, target, weight=self.weight, ignore_index=self.ignore_index,
                               reduction=self.reduction, label_smoothing=self.label_smoothing)


class NLLLoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, ignore_index=-100, reduce=None,
                 reduction="mean"):
        super().__init__(weight, reduction)
        self.ignore_index = ignore_index

    def forward(self, input, target):
        return F.nll_loss(input, target, weight=self.weight, ignore_index=self.ignore_index,
                          reduction=self.reduction)


class BCELoss(_WeightedLoss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean"):
        super().__init__(weight, reduction)

    def forward(self, input, target):
        return F.binary_cross_entropy(input, target, weight=self.weight,
                                      reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    def __init__(self, weight=None, size_average=None, reduce=None, reduction="mean",
                 pos_weight=None):
        super().__init__(reduction)
        for name, value in (("weight", weight), ("pos_weight", pos_weight)):
            if value is not None and not isinstance(value, Tensor):
                value = Tensor(np.asarray(value, dtype=np.float32))
            self.register_buffer(name, value)

    def forward(self, input, target):
        return F.binary_cross_entropy_with_logits(input, target, self.weight,
                                                  reduction=self.reduction,
                                                  pos_weight=self.pos_weight)


class MSELoss(_Loss):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__(reduction)

    def forward(self, input, target):
        return F.mse_loss(input, target, reduction=self.reduction)


class L1Loss(_Loss):
    def __init__(self, size_average=None, reduce=None, reduction="mean"):
        super().__init__(reduction)

    def forward(self, input, target):
        return F.l1_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    def __init__(self, size_average=None, reduce=None, reduction="mean", beta=1.0):
        super().__init__(reduction)
        self.beta = beta

    def forward(self, input, target):
        return F.smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    def __init__(self, reduction="mean", delta=1.0):
        super().__init__(reduction)
        self.delta = delta

    def forward(self, input, target):
        return F.huber_loss(input, target, reduction=self.reduction, delta=self.delta)


class DiceLoss(_Loss):
    """Soft Dice loss for 2D/3D segmentation logits (see nn.functional.dice_loss)."""

    def __init__(self, smooth=1.0, activation="auto", include_background=True, weight=None,
                 ignore_index=None, reduction="mean"):
        super().__init__(reduction)
        self.smooth, self.activation = smooth, activation
        self.include_background, self.ignore_index = include_background, ignore_index
        self.weight = None if weight is None else np.asarray(weight, dtype=np.float32)

    def forward(self, input, target):
        return F.dice_loss(input, target, smooth=self.smooth, activation=self.activation,
                           include_background=self.include_background, weight=self.weight,
                           ignore_index=self.ignore_index, reduction=self.reduction)

    def extra_repr(self):
        return f"smooth={self.smooth}, activation={self.activation!r}"


class FocalLoss(_Loss):
    """Focal loss (Lin et al., 2017).

    multiclass=False: sigmoid focal loss on binary / multi-label logits (target of the input's
    shape), weighted by alpha for positives. multiclass=True: softmax focal loss on (N, C, *)
    logits and class indices (N, *), with optional class weight and ignore_index.
    """

    def __init__(self, alpha=0.25, gamma=2.0, reduction="mean", multiclass=False, weight=None,
                 ignore_index=-100):
        super().__init__(reduction)
        self.alpha, self.gamma, self.multiclass = alpha, gamma, multiclass
        self.ignore_index = ignore_index
        self.weight = None if weight is None else np.asarray(weight, dtype=np.float32)

    def forward(self, input, target):
        if self.multiclass:
            return F.focal_loss(input, target, gamma=self.gamma, weight=self.weight,
                                ignore_index=self.ignore_index, reduction=self.reduction)
        return F.sigmoid_focal_loss(input, target, alpha=self.alpha, gamma=self.gamma,
                                    reduction=self.reduction)

    def extra_repr(self):
        return f"alpha={self.alpha}, gamma={self.gamma}, multiclass={self.multiclass}"
