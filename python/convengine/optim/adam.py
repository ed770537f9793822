"""Adam and AdamW (decoupled weight decay), as torch.optim.Adam / AdamW (amsgrad included)."""

import math

import numpy as np

from ..autograd import no_grad
from .optimizer import Optimizer, axpy, check_hyper

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
    weight_decay adds wd * p to g (L2); AdamW instead shrinks p by (1 - lr * wd) first."""

    _decoupled = False

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0,
                 amsgrad=False, *, maximize=False):
        owner = type(self).__name__
        check_hyper("lr", lr, owner=owner)
        check_hyper("eps", eps, owner=owner)
        check_hyper("beta parameter at index 0", betas[0], 0.0, 1.0, owner)
        check_hyper("beta parameter at index 1", betas[1], 0.0, 1.0, owner)
        if betas[0] >= 1 or betas[1] >= 1:
            raise ValueError(f"{owner}: betas must lie in [0, 1), got {betas}")
        check_hyper("weight_decay", weight_decay, owner=owner)
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad,
                                      maximize=maximize))

    @no_grad()
    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
            weight_decay, amsgrad = group["weight_decay"], group["amsgrad"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                if group["maximize"]:
                    g = -g
                state = self.state[p]
                if not state:
                    state["step"] = 0.0
                    state["exp_avg"] = np.zeros_like(p.data)
                    state["exp_avg_sq"] = np.zeros_like(p.data)
                    if amsgrad:
                        state["max_exp_avg_sq"] = np.zeros_like(p.data)
                state["step"] += 1
                step = state["step"]
                if weight_decay:
                    if self._decoupled:
                        p.data *= 1 - lr * weight_decay
                    else:
                        g = g + weight_decay * p.data
                g = np.ascontiguousarray(g, dtype=p.dtype)
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg *= beta1  # m = b1 m + (1 - b1) g
                axpy(1 - beta1, g, exp_avg)
                exp_avg_sq *= beta2  # v = b2 v + (1 - b2) g^2
                axpy(1 - beta2, g * g, exp_avg_sq)
                bias_correction1 = 1 - beta1 ** step
                bias_correction2_sqrt = math.sqrt(1 - beta2 ** step)
                if amsgrad:
                    np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
                    denom = np.sqrt(state["max_exp_avg_sq"])
                else:
                    denom = np.sqrt(exp_avg_sq)
                denom /= bias_correction2_sqrt
                denom += eps
                np.divide(exp_avg, denom, out=denom)
                axpy(-lr / bias_correction1, denom, p.data)
        return loss


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): p *= 1 - lr * weight_decay
    before the Adam step; default weight_decay 1e-2, as in PyTorch."""

    _decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False, *, maximize=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, maximize=maximize)
