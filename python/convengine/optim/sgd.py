"""SGD with momentum, dampening, Nesterov momentum and (L2) weight decay, as torch.optim.SGD."""

import numpy as np

from ..autograd import no_grad
from .optimizer import Optimizer, axpy, check_hyper

__all__ = ["SGD"]


class SGD(Optimizer):
    """p -= lr * d, where d = g + wd * p, then with momentum:
    buf = momentum * buf + (1 - dampening) * d (buf = d on the first step) and
    d = d + momentum * buf (nesterov) or d = buf."""

    def __init__(self, params, lr=1e-3, momentum=0, dampening=0, weight_decay=0,
                 nesterov=False, *, maximize=False):
        check_hyper("lr", lr, owner="SGD")
        check_hyper("momentum", momentum, owner="SGD")
        check_hyper("weight_decay", weight_decay, owner="SGD")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov,
                                      maximize=maximize))

    @no_grad()
    def step(self, closure=None):
        loss = self._closure_loss(closure)
        for group in self.param_groups:
            lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
            weight_decay, nesterov = group["weight_decay"], group["nesterov"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad.data
                if group["maximize"]:
                    d = -d
                if weight_decay:
                    d = d + weight_decay * p.data
                if momentum:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = np.array(d, dtype=p.dtype, copy=True)
                        state["momentum_buffer"] = buf
                    else:
                        buf *= momentum
                        axpy(1 - dampening, np.ascontiguousarray(d, dtype=p.dtype), buf)
                    d = d + momentum * buf if nesterov else buf
                axpy(-lr, np.ascontiguousarray(d, dtype=p.dtype), p.data)
        return loss
