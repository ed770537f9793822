"""Adversarial examples: FGSM (Goodfellow et al. 2015) and PGD (Madry et al. 2018) in the L-inf
and L2 norms, targeted or untargeted, with a random start and clipping to the valid intensity
range; accuracy against epsilon curves; an `Attack` to hand to Trainer(adversary=...) for
adversarial training.

    x_adv = fgsm(model, x, y, eps=0.03, clip=(0, 1))
    x_adv = pgd(model, x, y, eps=0.03, steps=10, norm="linf", clip=(0, 1), seed=0)
    x_adv = pgd(model, x, target_class, eps=0.5, norm="l2", targeted=True)
    curve = accuracy_vs_epsilon(model, x, y, [0, 0.01, 0.02, 0.05], attack="pgd", steps=5)
    Trainer(model, loss, opt, adversary=Attack("pgd", eps=0.03, steps=5))

Every attack: the loss is nn.CrossEntropyLoss() unless loss_fn is given; untargeted attacks
climb the loss of the true labels y, targeted ones (targeted=True, y = the target classes)
descend the loss of the targets. The model runs in eval mode while the attack is computed (its
modes are restored afterwards, so batch-norm statistics do not move) and its parameters' .grad
are untouched. Inputs may be Tensors or float arrays; the result has the input's kind.
"""

import numbers

import numpy as np

from .autograd import enable_grad, no_grad
from .nn.modules.loss import CrossEntropyLoss
from .nn.modules.module import Module, frozen_eval
from .tensor import Tensor

__all__ = ["fgsm", "pgd", "accuracy_vs_epsilon", "Attack", "input_gradient"]

_NORMS = ("linf", "l2")
_TINY = 1e-12


# ----- argument checks -----------------------------------------------------------------------

def _check_model(model, op):
    if not isinstance(model, Module) and not callable(model):
        raise TypeError(f"{op}: model must be a convengine.nn.Module or callable, got "
                        f"{type(model).__name__}")


def _as_array(x, name, op):
    if isinstance(x, Tensor):
        x = x.data
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{op}: {name} must be a Tensor or numpy array, got {type(x).__name__}")
    if x.dtype.kind != "f":
        raise TypeError(f"{op}: {name} must be floating point, got dtype {x.dtype}")
    if x.ndim < 2:
        raise ValueError(f"{op}: {name} must be a batch (N, ...), got shape {x.shape}")
    return x


def _as_labels(y, n, op):
    if isinstance(y, Tensor):
        y = y.data
    y = np.asarray(y)
    if y.ndim == 0 or y.shape[0] != n:
        raise ValueError(f"{op}: y must hold one label (or target) per input, {n} in all, "
                         f"got shape {y.shape}")
    return y


def _check_eps(eps, op, name="eps"):
    if isinstance(eps, bool) or not isinstance(eps, numbers.Real):
        raise TypeError(f"{op}: {name} must be a number, got {type(eps).__name__}")
    if not np.isfinite(eps) or eps < 0:
        raise ValueError(f"{op}: {name} must be finite and >= 0, got {eps}")
    return float(eps)


def _check_clip(clip, op):
    if clip is None:
        return None
    if not isinstance(clip, (tuple, list)) or len(clip) != 2 or \
            not all(isinstance(v, numbers.Real) for v in clip):
        raise TypeError(f"{op}: clip must be None or a (lo, hi) pair of numbers, got {clip!r}")
    lo, hi = float(clip[0]), float(clip[1])
    if not lo < hi:
        raise ValueError(f"{op}: clip must have lo < hi, got {clip!r}")
    return lo, hi


def _rng(seed, op):
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or (isinstance(seed, numbers.Integral) and not isinstance(seed, bool)):
        return np.random.default_rng(seed)
    raise TypeError(f"{op}: seed must be None, an int or a numpy Generator, got "
                    f"{type(seed).__name__}")


def _like(result, original):
    result = result.astype(_as_dtype(original), copy=False)
    return Tensor(result) if isinstance(original, Tensor) else result


def _as_dtype(x):
    return x.data.dtype if isinstance(x, Tensor) else x.dtype


# ----- the gradient with respect to the input ----------------------------------------------------

def _loss_and_grad(model, x, y, loss_fn):
    """(loss value, d loss / d x) for an ndarray x; the model already in attack mode."""
    xt = Tensor(np.ascontiguousarray(x), requires_grad=True)
    with enable_grad():
        loss = loss_fn(model(xt), Tensor(y))
        if not isinstance(loss, Tensor) or loss.data.size != 1:
            raise ValueError("loss_fn must return a scalar Tensor")
        loss.backward()
    grad = xt.grad.data if xt.grad is not None else np.zeros_like(x)
    return float(loss.item()), grad


def input_gradient(model, x, y, loss_fn=None):
    """d loss(model(x), y) / d x as an ndarray (model in eval mode, parameters untouched)."""
    op = "input_gradient"
    _check_model(model, op)
    xa = _as_array(x, "x", op)
    ya = _as_labels(y, xa.shape[0], op)
    with frozen_eval(model):
        return _loss_and_grad(model, xa, ya, loss_fn or CrossEntropyLoss())[1]


# ----- attacks ----------------------------------------------------------------------------------

def fgsm(model, x, y, eps, loss_fn=None, targeted=False, clip=None):
    """Fast gradient sign method: x + eps sign(d loss/dx) (targeted: x - eps sign(...)),
    clipped to clip = (lo, hi) when given."""
    op = "fgsm"
    _check_model(model, op)
    xa = _as_array(x, "x", op)
    ya = _as_labels(y, xa.shape[0], op)
    eps = _check_eps(eps, op)
    clip = _check_clip(clip, op)
    with frozen_eval(model):
        _, grad = _loss_and_grad(model, xa, ya, loss_fn or CrossEntropyLoss())
    step = -eps if targeted else eps
    adv = xa + step * np.sign(grad).astype(xa.dtype)
    if clip is not None:
        adv = np.clip(adv, *clip)
    return _like(adv, x)


def _l2_norms(v):
    """(N, 1, ..., 1) L2 norm of each sample."""
    n = np.sqrt((v.reshape(v.shape[0], -1).astype(np.float64) ** 2).sum(axis=1))
    return n.reshape((-1,) + (1,) * (v.ndim - 1))


def _project(delta, eps, norm):
    if norm == "linf":
        return np.clip(delta, -eps, eps)
    norms = _l2_norms(delta)
    return delta * np.minimum(1.0, eps / np.maximum(norms, _TINY))


def pgd(model, x, y, eps, alpha=None, steps=10, norm="linf", loss_fn=None, targeted=False,
        random_start=True, clip=None, seed=None):
    """Projected gradient descent: `steps` steps of size alpha (default 2.5 eps / steps) along
    sign(grad) (norm="linf") or grad / |grad|_2 (norm="l2"), each followed by the projection
    onto the eps ball around x and onto clip = (lo, hi) (the range wins where x itself lies
    outside it). random_start: begin at a uniform point
    of the ball (seed: an int or numpy Generator for it)."""
    op = "pgd"
    _check_model(model, op)
    xa = _as_array(x, "x", op)
    ya = _as_labels(y, xa.shape[0], op)
    eps = _check_eps(eps, op)
    if norm not in _NORMS:
        raise ValueError(f"{op}: norm must be one of {_NORMS}, got {norm!r}")
    if isinstance(steps, bool) or not isinstance(steps, numbers.Integral) or steps < 1:
        raise ValueError(f"{op}: steps must be a positive int, got {steps!r}")
    alpha = 2.5 * eps / steps if alpha is None else _check_eps(alpha, op, "alpha")
    clip = _check_clip(clip, op)
    rng = _rng(seed, op)
    loss_fn = loss_fn or CrossEntropyLoss()
    x64 = xa.astype(np.float64)
    delta = np.zeros_like(x64)
    if random_start and eps > 0:
        if norm == "linf":
            delta = rng.uniform(-eps, eps, x64.shape)
        else:  # uniform in the ball: a random direction, radius eps u^(1/d)
            direction = rng.standard_normal(x64.shape)
            d = direction[0].size
            radius = eps * rng.random(x64.shape[0]) ** (1.0 / d)
            delta = direction / np.maximum(_l2_norms(direction), _TINY) * \
                radius.reshape((-1,) + (1,) * (x64.ndim - 1))
    adv = x64 + delta
    if clip is not None:
        adv = np.clip(adv, *clip)
    sign = -1.0 if targeted else 1.0
    with frozen_eval(model):
        for _ in range(int(steps)):
            _, grad = _loss_and_grad(model, adv.astype(xa.dtype), ya, loss_fn)
            grad = grad.astype(np.float64)
            if norm == "linf":
                step = np.sign(grad)
            else:
                step = grad / np.maximum(_l2_norms(grad), _TINY)
            adv = x64 + _project(adv + sign * alpha * step - x64, eps, norm)
            if clip is not None:
                adv = np.clip(adv, *clip)
    return _like(adv, x)


_ATTACKS = {"fgsm": fgsm, "pgd": pgd}


def _resolve_attack(method, op, name):
    """An attack given by name ("fgsm", "pgd") or as a callable, as the callable."""
    if isinstance(method, str):
        if method not in _ATTACKS:
            raise ValueError(f"{op}: {name} must be one of {sorted(_ATTACKS)} or a callable, "
                             f"got {method!r}")
        return _ATTACKS[method]
    if not callable(method):
        raise TypeError(f"{op}: {name} must be a name or a callable, got "
                        f"{type(method).__name__}")
    return method


class Attack:
    """A configured attack: Attack("pgd", eps=0.03, steps=5)(model, x, y) -> x_adv.

    For adversarial training: Trainer(..., adversary=Attack("fgsm", eps=0.02)).
    method: "fgsm", "pgd" or a callable f(model, x, y, **kwargs).
    """

    def __init__(self, method="pgd", **kwargs):
        method = _resolve_attack(method, "Attack", "method")
        if "eps" not in kwargs:
            raise ValueError("Attack: eps is required")
        self.method, self.kwargs = method, kwargs

    def __call__(self, model, x, y):
        return self.method(model, x, y, **self.kwargs)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.kwargs.items())
        return f"Attack({getattr(self.method, '__name__', self.method)}, {args})"


def _batches(x, y, batch_size, op):
    if y is None:  # an iterable of (inputs, labels) batches, e.g. a DataLoader
        for batch in x:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ValueError(f"{op}: each batch must be an (inputs, labels) pair")
            yield batch[0], batch[1]
        return
    xa = _as_array(x, "x", op)
    ya = _as_labels(y, xa.shape[0], op)
    for i in range(0, xa.shape[0], batch_size):
        yield xa[i:i + batch_size], ya[i:i + batch_size]


def accuracy_vs_epsilon(model, x, y=None, epsilons=(0.0, 0.01, 0.02, 0.05, 0.1), attack="fgsm",
                        batch_size=64, **attack_kwargs):
    """Accuracy of `model` on adversarial examples at each eps.

    x, y: inputs and labels, or x an iterable of (inputs, labels) batches (a DataLoader) with
    y None. attack: "fgsm", "pgd" or a callable f(model, x, y, eps=..., **kwargs); attack_kwargs
    go to it (clip, steps, norm, seed, ...). eps = 0 is the clean accuracy.
    Returns {"epsilon": [...], "accuracy": [...]}.
    """
    op = "accuracy_vs_epsilon"
    _check_model(model, op)
    attack = _resolve_attack(attack, op, "attack")
    if isinstance(epsilons, numbers.Real):
        epsilons = [epsilons]
    epsilons = [_check_eps(e, op, "epsilons") for e in epsilons]
    if not epsilons:
        raise ValueError(f"{op}: epsilons must not be empty")
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) or \
            batch_size < 1:
        raise ValueError(f"{op}: batch_size must be a positive int, got {batch_size!r}")
    data = list(_batches(x, y, int(batch_size), op))
    if not data:
        raise ValueError(f"{op}: no data")
    accuracies = []
    for eps in epsilons:
        correct = total = 0
        for xb, yb in data:
            labels = _as_labels(yb, _as_array(xb, "x", op).shape[0], op)
            if labels.ndim != 1:
                raise ValueError(f"{op}: y must be class labels (N,) of a classifier, got shape "
                                 f"{labels.shape}")
            xb_adv = xb if eps == 0 else attack(model, xb, labels, eps=eps, **attack_kwargs)
            with frozen_eval(model), no_grad():
                out = model(xb_adv if isinstance(xb_adv, Tensor) else Tensor(xb_adv))
            pred = out.data.reshape(out.shape[0], out.shape[1], -1).sum(axis=2).argmax(axis=1)
            correct += int((pred == labels).sum())
            total += labels.shape[0]
        accuracies.append(correct / total)
    return {"epsilon": epsilons, "accuracy": accuracies}
