"""Losses against PyTorch (values and gradients), gradcheck in float64, numerical stability
and bad input."""

import numpy as np
import pytest

import convengine as ce
from convengine import nn
from convengine.nn import functional as F
from conftest import assert_close


def _torch():
    return pytest.importorskip("torch")


def _both(fn_ours, fn_torch, inputs, needs_grad, kwargs_ours=None, kwargs_torch=None,
          kind="reduction"):
    """Runs the loss on convengine and torch tensors; compares value and gradients."""
    torch = _torch()
    ours = [ce.tensor(a, requires_grad=g) for a, g in zip(inputs, needs_grad)]
    theirs = [torch.tensor(a, requires_grad=g) for a, g in zip(inputs, needs_grad)]
    out_o = fn_ours(*ours, **(kwargs_ours or {}))
    out_t = fn_torch(*theirs, **(kwargs_torch or kwargs_ours or {}))
    assert out_o.shape == tuple(out_t.shape)
    assert_close(out_o.data, out_t.detach().numpy(), kind)
    seed = np.random.default_rng(1).uniform(0.5, 1.5, out_o.shape).astype(inputs[0].dtype)
    out_o.backward(seed)
    out_t.backward(torch.tensor(seed))
    for o, t, g in zip(ours, theirs, needs_grad):
        if g:
            assert_close(o.grad.data, t.grad.numpy(), kind)


def _torch_kwargs(kwargs):
    torch = _torch()
    return {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extra", [{}, dict(weight=np.array([0.2, 1.0, 3.0], np.float32)),
                                   dict(label_smoothing=0.1),
                                   dict(ignore_index=1),
                                   dict(weight=np.array([0.5, 2.0, 1.0], np.float32),
                                        label_smoothing=0.2, ignore_index=0)])
@pytest.mark.parametrize("spatial", [(), (3, 2)])
def test_cross_entropy_class_indices_match_torch(reduction, extra, spatial, rng):
    torch = _torch()
    x = (rng.standard_normal((4, 3) + spatial) * 2).astype(np.float32)
    y = rng.integers(0, 3, (4,) + spatial)
    kwargs = dict(extra, reduction=reduction)
    _both(lambda x: F.cross_entropy(x, y, **kwargs),
          lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(y),
                                                      **_torch_kwargs(kwargs)),
          [x], [True])


@pytest.mark.parametrize("extra", [{}, dict(label_smoothing=0.3),
                                   dict(weight=np.array([1.0, 0.5, 2.0, 1.0], np.float32))])
def test_cross_entropy_probabilities_match_torch(extra, rng):
    torch = _torch()
    x = rng.standard_normal((5, 4, 2)).astype(np.float32)
    t = rng.dirichlet(np.ones(4), (5, 2)).transpose(0, 2, 1).astype(np.float32)
    _both(lambda x, t: F.cross_entropy(x, t, **extra),
          lambda x, t: torch.nn.functional.cross_entropy(x, t, **_torch_kwargs(extra)),
          [x, t], [True, True])


def test_cross_entropy_unbatched_and_module(rng):
    torch = _torch()
    x = rng.standard_normal(5).astype(np.float32)
    for reduction in ("mean", "none"):
        _both(lambda x: F.cross_entropy(x, np.array(2), reduction=reduction),
              lambda x: torch.nn.functional.cross_entropy(x, torch.tensor(2),
                                                          reduction=reduction), [x], [True])
    loss = nn.CrossEntropyLoss(weight=[1.0, 2.0], label_smoothing=0.1)
    tl = torch.nn.CrossEntropyLoss(weight=torch.tensor([1.0, 2.0]), label_smoothing=0.1)
    x2 = rng.standard_normal((6, 2)).astype(np.float32)
    y2 = rng.integers(0, 2, 6)
    assert_close(loss(ce.tensor(x2), ce.tensor(y2)).data,
                 tl(torch.tensor(x2), torch.tensor(y2)).numpy(), "reduction")


def test_cross_entropy_is_stable_for_huge_logits():
    x = ce.tensor(np.array([[1e4, -1e4, 0.0], [-5e3, 5e3, 5e3]], np.float32),
                  requires_grad=True)
    loss = F.cross_entropy(x, ce.tensor(np.array([0, 1])))
    assert np.isfinite(loss.item()) and abs(loss.item() - np.log(2) / 2) < 1e-5
    loss.backward()
    assert np.isfinite(x.grad.data).all()


def test_cross_entropy_gradcheck(rng):
    x = ce.tensor(rng.standard_normal((3, 4, 2)), requires_grad=True)
    y = rng.integers(0, 4, (3, 2))
    y[0, 0] = -100
    w = np.array([1.0, 2.0, 0.5, 1.5])
    assert ce.gradcheck(lambda x: F.cross_entropy(x, y, weight=w, label_smoothing=0.15), (x,))
    assert ce.gradcheck(lambda x: F.cross_entropy(x, y, reduction="none"), (x,))
    t = ce.tensor(rng.dirichlet(np.ones(4), 3), requires_grad=True)
    x2 = ce.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert ce.gradcheck(lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1), (x2, t))
    assert ce.gradcheck(lambda x: F.nll_loss(x, y, weight=w), (x,))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_nll_loss_matches_torch(reduction, rng):
    torch = _torch()
    logp = np.log(rng.dirichlet(np.ones(3), (4, 2))).transpose(0, 2, 1).astype(np.float32)
    y = rng.integers(0, 3, (4, 2))
    kwargs = dict(weight=np.array([1.0, 0.3, 2.0], np.float32), ignore_index=2,
                  reduction=reduction)
    _both(lambda x: F.nll_loss(x, y, **kwargs),
          lambda x: torch.nn.functional.nll_loss(x, torch.tensor(y), **_torch_kwargs(kwargs)),
          [logp], [True])
    _both(lambda x: nn.NLLLoss(reduction=reduction)(x, y),
          lambda x: torch.nn.NLLLoss(reduction=reduction)(x, torch.tensor(y)), [logp], [True])


def test_class_loss_errors(rng):
    x = ce.tensor(rng.standard_normal((4, 3)).astype(np.float32))
    with pytest.raises(ValueError, match="class index 3, out of range"):
        F.cross_entropy(x, np.array([0, 1, 2, 3]))
    with pytest.raises(ValueError, match="class index -1"):
        F.nll_loss(x, np.array([0, 1, 2, -1]))
    with pytest.raises(ValueError, match="target shape"):
        F.cross_entropy(x, np.array([0, 1]))
    with pytest.raises(TypeError, match="integer class indices"):
        F.nll_loss(x, np.zeros(4, np.float32))
    with pytest.raises(ValueError, match="weight"):
        F.cross_entropy(x, np.array([0, 1, 2, 0]), weight=np.ones(4))
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, np.array([0, 1, 2, 0]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, np.array([0, 1, 2, 0]), label_smoothing=1.5)
    with pytest.raises(ValueError, match="reduction"):
        nn.MSELoss(reduction="bad")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_binary_losses_match_torch(reduction, rng):
    torch = _torch()
    p = rng.uniform(0.01, 0.99, (4, 3)).astype(np.float32)
    logits = (rng.standard_normal((4, 3)) * 4).astype(np.float32)
    t = rng.uniform(0, 1, (4, 3)).astype(np.float32)
    w = rng.uniform(0.5, 2, (3,)).astype(np.float32)
    pw = rng.uniform(0.5, 3, (3,)).astype(np.float32)
    tf = torch.nn.functional
    _both(lambda p, t: F.binary_cross_entropy(p, t, weight=w, reduction=reduction),
          lambda p, t: tf.binary_cross_entropy(p, t, weight=torch.tensor(w),
                                               reduction=reduction), [p, t], [True, True])
    _both(lambda x, t: F.binary_cross_entropy_with_logits(x, t, reduction=reduction),
          lambda x, t: tf.binary_cross_entropy_with_logits(x, t, reduction=reduction),
          [logits, t], [True, True])
    _both(lambda x, t: nn.BCEWithLogitsLoss(weight=w, pos_weight=pw, reduction=reduction)(x, t),
          lambda x, t: torch.nn.BCEWithLogitsLoss(weight=torch.tensor(w),
                                                  pos_weight=torch.tensor(pw),
                                                  reduction=reduction)(x, t),
          [logits, t], [True, True])
    _both(lambda p, t: nn.BCELoss(reduction=reduction)(p, t),
          lambda p, t: torch.nn.BCELoss(reduction=reduction)(p, t), [p, t], [True, False])


def test_binary_losses_stability_gradcheck_and_errors(rng):
    x = ce.tensor(np.array([1e4, -1e4, 50.0, -50.0], np.float32), requires_grad=True)
    t = ce.tensor(np.array([1.0, 0.0, 0.0, 1.0], np.float32))
    loss = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    np.testing.assert_allclose(loss.data, [0, 0, 50, 50], atol=1e-6)
    loss.sum().backward()
    assert np.isfinite(x.grad.data).all()
    # probabilities at exactly 0 and 1: the logs are clamped at -100
    bce = F.binary_cross_entropy(ce.tensor(np.array([0.0, 1.0], np.float32)),
                                 ce.tensor(np.array([1.0, 0.0], np.float32)), reduction="none")
    np.testing.assert_allclose(bce.data, [100, 100])
    xd = ce.tensor(rng.standard_normal((3, 2)), requires_grad=True)
    td = ce.tensor(rng.uniform(0, 1, (3, 2)), requires_grad=True)
    pd = ce.tensor(rng.uniform(0.1, 0.9, (3, 2)), requires_grad=True)
    pw = np.array([2.0, 0.5])
    assert ce.gradcheck(lambda x, t: F.binary_cross_entropy_with_logits(x, t, pos_weight=pw),
                        (xd, td))
    assert ce.gradcheck(lambda p, t: F.binary_cross_entropy(p, t), (pd, td))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(ce.tensor(np.array([1.5], np.float32)), ce.ones(1))
    with pytest.raises(ValueError, match="target shape"):
        F.binary_cross_entropy_with_logits(ce.zeros(3, 2), ce.zeros(3))
    with pytest.raises(ValueError, match="pos_weight"):
        F.binary_cross_entropy_with_logits(ce.zeros(3, 2), ce.zeros(3, 2), pos_weight=np.ones(3))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_regression_losses_match_torch(reduction, rng):
    torch = _torch()
    tf = torch.nn.functional
    x = (rng.standard_normal((3, 4)) * 2).astype(np.float32)
    t = (rng.standard_normal((3, 4)) * 2).astype(np.float32)
    for ours, theirs, kw in [(F.mse_loss, tf.mse_loss, {}), (F.l1_loss, tf.l1_loss, {}),
                             (F.smooth_l1_loss, tf.smooth_l1_loss, {}),
                             (F.smooth_l1_loss, tf.smooth_l1_loss, dict(beta=0.5)),
                             (F.smooth_l1_loss, tf.smooth_l1_loss, dict(beta=0.0)),
                             (F.huber_loss, tf.huber_loss, dict(delta=0.7))]:
        _both(lambda x, t: ours(x, t, reduction=reduction, **kw),
              lambda x, t: theirs(x, t, reduction=reduction, **kw), [x, t], [True, True])
    for ours, theirs in [(nn.MSELoss, torch.nn.MSELoss), (nn.L1Loss, torch.nn.L1Loss),
                         (nn.SmoothL1Loss, torch.nn.SmoothL1Loss),
                         (nn.HuberLoss, torch.nn.HuberLoss)]:
        _both(lambda x, t: ours(reduction=reduction)(x, t),
              lambda x, t: theirs(reduction=reduction)(x, t), [x, t], [True, False])
    xd = ce.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    td = ce.tensor(rng.standard_normal((2, 3)), requires_grad=True)
    assert ce.gradcheck(lambda x, t: F.smooth_l1_loss(x, t, beta=0.5), (xd, td))
    with pytest.raises(ValueError, match="target shape"):
        F.mse_loss(ce.zeros(2, 3), ce.zeros(3, 2))
    with pytest.raises(ValueError, match="beta"):
        F.smooth_l1_loss(ce.zeros(2), ce.zeros(2), beta=-1)


def _torch_dice(torch, logits, target_onehot, smooth, weight, activation):
    probs = torch.softmax(logits, 1) if activation == "softmax" else torch.sigmoid(logits)
    axes = tuple(range(2, logits.ndim))
    inter = (probs * target_onehot).sum(axes)
    card = probs.sum(axes) + target_onehot.sum(axes)
    per_class = 1 - (2 * inter + smooth) / (card + smooth)
    return ((per_class * weight).sum(1) / weight.sum()).mean()


@pytest.mark.parametrize("spatial", [(5, 4), (3, 4, 2)])
def test_dice_loss_2d_3d_matches_torch_formula(spatial, rng):
    torch = _torch()
    c = 3
    x = rng.standard_normal((2, c) + spatial).astype(np.float32)
    y = rng.integers(0, c, (2,) + spatial)
    onehot = np.moveaxis(np.eye(c, dtype=np.float32)[y], -1, 1)
    for include_background, weight in [(True, None), (False, None), (True, [1.0, 2.0, 0.5])]:
        w = np.ones(c, np.float32) if weight is None else np.array(weight, np.float32)
        if not include_background:
            w[0] = 0
        _both(lambda x: nn.DiceLoss(smooth=1.0, include_background=include_background,
                                    weight=weight)(x, y),
              lambda x: _torch_dice(torch, x, torch.tensor(onehot), 1.0, torch.tensor(w),
                                    "softmax"), [x], [True])
    # one-hot target and binary (sigmoid) segmentation
    _both(lambda x: F.dice_loss(x, onehot),
          lambda x: _torch_dice(torch, x, torch.tensor(onehot), 1.0, torch.ones(c),
                                "softmax"), [x], [True])
    xb = x[:, :1]
    yb = (y > 0).astype(np.int64)
    _both(lambda x: F.dice_loss(x, yb, smooth=0.5),
          lambda x: _torch_dice(torch, x, torch.tensor(yb[:, None].astype(np.float32)), 0.5,
                                torch.ones(1), "sigmoid"), [xb], [True])


def test_dice_loss_perfect_prediction_gradcheck_and_errors(rng):
    y = rng.integers(0, 2, (1, 4, 4))
    perfect = np.where(np.eye(2)[y].transpose(0, 3, 1, 2) > 0, 30.0, -30.0).astype(np.float32)
    assert F.dice_loss(ce.tensor(perfect), y, smooth=0.0).item() < 1e-6
    x = ce.tensor(rng.standard_normal((2, 3, 3, 2)), requires_grad=True)
    yy = rng.integers(0, 3, (2, 3, 2))
    yy[0, 0, 0] = 255
    assert ce.gradcheck(lambda x: F.dice_loss(x, yy, ignore_index=255, reduction="none"), (x,))
    with pytest.raises(ValueError, match="target shape"):
        F.dice_loss(ce.zeros(2, 3, 4, 4), np.zeros((2, 5, 4), np.int64))
    with pytest.raises(ValueError, match="activation"):
        F.dice_loss(ce.zeros(2, 3, 4, 4), np.zeros((2, 4, 4), np.int64), activation="relu")
    with pytest.raises(ValueError, match="out of range"):
        F.dice_loss(ce.zeros(2, 3, 4, 4), np.full((2, 4, 4), 3))


def test_focal_losses_match_torch_formulas(rng):
    torch = _torch()
    tf = torch.nn.functional
    x = (rng.standard_normal((4, 3)) * 2).astype(np.float32)
    t = (rng.uniform(0, 1, (4, 3)) > 0.5).astype(np.float32)

    def torchvision_focal(x, t, alpha=0.25, gamma=2.0):
        p = torch.sigmoid(x)
        ce_loss = tf.binary_cross_entropy_with_logits(x, t, reduction="none")
        p_t = p * t + (1 - p) * (1 - t)
        loss = ce_loss * (1 - p_t) ** gamma
        return ((alpha * t + (1 - alpha) * (1 - t)) * loss).mean()

    _both(lambda x, t: nn.FocalLoss()(x, t), torchvision_focal, [x, t], [True, False])
    _both(lambda x, t: F.sigmoid_focal_loss(x, t, reduction="mean"), torchvision_focal,
          [x, t], [True, False])
    y = rng.integers(0, 3, 4)
    w = np.array([1.0, 2.0, 0.5], np.float32)

    def torch_multiclass(x, gamma=2.0):
        logp = torch.log_softmax(x, 1).gather(1, torch.tensor(y)[:, None])[:, 0]
        wy = torch.tensor(w)[torch.tensor(y)]
        return (-wy * (1 - logp.exp()) ** gamma * logp).sum() / wy.sum()

    _both(lambda x: nn.FocalLoss(multiclass=True, weight=w)(x, y), torch_multiclass, [x],
          [True])
    # gamma = 0 is cross entropy
    np.testing.assert_allclose(F.focal_loss(ce.tensor(x), y, gamma=0).item(),
                               F.cross_entropy(ce.tensor(x), y).item(), rtol=1e-5)
    with pytest.raises(ValueError, match="gamma"):
        F.focal_loss(ce.tensor(x), y, gamma=-1)


def test_focal_softmax_sigmoid_and_dropout_gradcheck(rng):
    x = ce.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    y = rng.integers(0, 4, 3)
    t = ce.tensor((rng.uniform(0, 1, (3, 4)) > 0.5).astype(np.float64))
    assert ce.gradcheck(lambda x: F.focal_loss(x, y, gamma=2.0), (x,))
    assert ce.gradcheck(lambda x: F.sigmoid_focal_loss(x, t, reduction="sum"), (x,))

    def seeded_dropout(x):
        ce.manual_seed(0)  # the same mask on every call
        return F.dropout(x, 0.4)

    assert ce.gradcheck(seeded_dropout, (x,))
    assert ce.gradcheck(lambda x: F.dropout2d(x.reshape(1, 3, 2, 2), 0.0), (x,))
