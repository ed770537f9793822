"""RMSprop (optionally centred, with momentum), as torch.optim.RMSprop."""

import numpy as np

from ..autograd import no_grad
from .optimizer import Optimizer, axpy, check_hyper

__all__ = ["RMSprop"]


class RMSprop(Optimizer):
    """v = alpha v + (1 - alpha) g^2; avg = sqrt(v - mean_g^2 if centered else v) + eps;
    p -= lr * g / avg (or through a momentum buffer buf = momentum buf + g / avg)."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0,
                 centered=False, *, maximize=False):
        check_hyper("lr", lr, owner="RMSprop")
        check_hyper("alpha", alpha, owner="RMSprop")
        check_hyper("eps", eps, owner="RMSprop")
        check_hyper("momentum", momentum, owner="RMSprop")
        check_hyper("weight_decay", weight_decay, owner="RMSprop")
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered, maximize=maximize))

    @no_grad()
    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, alpha, eps = group["lr"], group["alpha"], group["eps"]
            weight_decay, momentum = group["weight_decay"], group["momentum"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                if group["maximize"]:
                    g = -g
                if weight_decay:
                    g = g + weight_decay * p.data
                g = np.ascontiguousarray(g, dtype=p.dtype)
                state = self.state[p]
                if not state:
                    state["step"] = 0.0
                    state["square_avg"] = np.zeros_like(p.data)
                    if momentum > 0:
                        state["momentum_buffer"] = np.zeros_like(p.data)
                    if group["centered"]:
                        state["grad_avg"] = np.zeros_like(p.data)
                state["step"] += 1
                square_avg = state["square_avg"]
                square_avg *= alpha
                axpy(1 - alpha, g * g, square_avg)
                if group["centered"]:
                    grad_avg = state["grad_avg"]
                    grad_avg *= alpha
                    axpy(1 - alpha, g, grad_avg)
                    avg = np.sqrt(square_avg - grad_avg * grad_avg)
                else:
                    avg = np.sqrt(square_avg)
                avg += eps
                if momentum > 0:
                    buf = state["momentum_buffer"]
                    buf *= momentum
                    buf += g / avg
                    axpy(-lr, buf, p.data)
                else:
                    axpy(-lr, g / avg, p.data)
        return loss
