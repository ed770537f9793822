"""convengine.adversarial: FGSM equals torch's perturbation on the same weights, PGD (L-inf and
L2, targeted and untargeted) stays inside the eps ball and the valid range and does what it is
for, accuracy against eps, and adversarial training through Trainer(adversary=...)."""

import numpy as np
import pytest

import convengine as ce
from convengine import nn, optim
from convengine.adversarial import Attack, accuracy_vs_epsilon, fgsm, input_gradient, pgd
from convengine.data import DataLoader, TensorDataset
from convengine.training import Trainer

try:
    import torch
except ImportError:
    torch = None


def _net(fw):
    tnn = fw.nn
    return tnn.Sequential(tnn.Conv2d(1, 4, 3, padding=1), tnn.ReLU(), tnn.MaxPool2d(2),
                          tnn.Flatten(), tnn.Linear(4 * 4 * 4, 3))


def _data(n=48, seed=0):
    """Three classes told apart by where a bright square sits, intensities in [0, 1]."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.uniform(0, 0.3, (n, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 0, 2 * c:2 * c + 3, 2:6] += 0.6
    return x, y.astype(np.int64)


@pytest.fixture(scope="module")
def fitted():
    ce.manual_seed(0)
    model = _net(ce)
    x, y = _data(96)
    opt = optim.Adam(model.parameters(), lr=2e-2)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(60):
        opt.zero_grad()
        loss_fn(model(ce.tensor(x)), ce.tensor(y)).backward()
        opt.step()
    model.eval()
    return model, x, y


def _accuracy(model, x, y):
    with ce.no_grad():
        return float((model(ce.tensor(np.asarray(x))).numpy().argmax(1) == y).mean())


def _loss(model, x, y):
    with ce.no_grad():
        return float(nn.CrossEntropyLoss()(model(ce.tensor(np.asarray(x))), ce.tensor(y)).item())


@pytest.mark.skipif(torch is None, reason="torch is not installed")
@pytest.mark.parametrize("targeted", [False, True])
def test_fgsm_equals_torch(targeted):
    ce.manual_seed(1)
    ours, theirs = _net(ce), _net(torch)
    theirs.load_state_dict({k: torch.from_numpy(v.numpy()) for k, v in ours.state_dict().items()})
    theirs.eval()
    x, y = _data(8, seed=2)
    eps = 0.05
    mine = fgsm(ours, x, y, eps, targeted=targeted, clip=(0.0, 1.0))
    xt = torch.tensor(x, requires_grad=True)
    torch.nn.functional.cross_entropy(theirs(xt), torch.tensor(y)).backward()
    step = -eps if targeted else eps
    reference = torch.clamp(xt + step * xt.grad.sign(), 0, 1).detach().numpy()
    # the same perturbation wherever the gradient's sign is defined beyond float32 noise
    g = xt.grad.numpy()
    decided = np.abs(g) > 1e-6 * np.abs(g).max()
    assert decided.mean() > 0.5
    np.testing.assert_array_equal(mine[decided], reference[decided])
    assert np.abs(mine - x).max() <= eps + 1e-7


def test_fgsm_increases_the_loss_and_respects_range(fitted):
    model, x, y = fitted
    adv = fgsm(model, ce.tensor(x), ce.tensor(y), 0.1, clip=(0.0, 1.0))
    assert isinstance(adv, ce.Tensor) and adv.dtype == np.float32
    adv = adv.numpy()
    assert np.abs(adv - x).max() <= 0.1 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert _loss(model, adv, y) > _loss(model, x, y)


@pytest.mark.parametrize("norm, eps", [("linf", 0.08), ("l2", 0.8)])
def test_pgd_stays_in_ball_and_range_and_beats_fgsm(fitted, norm, eps):
    model, x, y = fitted
    adv = pgd(model, x, y, eps, steps=8, norm=norm, clip=(0.0, 1.0), seed=0)
    assert isinstance(adv, np.ndarray) and adv.shape == x.shape
    delta = (adv - x).reshape(len(x), -1).astype(np.float64)
    size = np.abs(delta).max(1) if norm == "linf" else np.sqrt((delta ** 2).sum(1))
    assert size.max() <= eps * (1 + 1e-5) + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert _loss(model, adv, y) > _loss(model, x, y)
    assert _accuracy(model, adv, y) <= _accuracy(model, x, y)
    if norm == "linf":
        assert _loss(model, adv, y) >= _loss(model, fgsm(model, x, y, eps, clip=(0, 1)), y)
    # seeded random start: reproducible; without it: deterministic
    np.testing.assert_array_equal(adv, pgd(model, x, y, eps, steps=8, norm=norm,
                                           clip=(0.0, 1.0), seed=0))
    a = pgd(model, x, y, eps, steps=2, norm=norm, random_start=False)
    np.testing.assert_array_equal(a, pgd(model, x, y, eps, steps=2, norm=norm,
                                         random_start=False, seed=5))


@pytest.mark.parametrize("norm, eps", [("linf", 0.15), ("l2", 1.5)])
def test_targeted_pgd_raises_the_target_probability(fitted, norm, eps):
    model, x, y = fitted
    target = (y + 1) % 3

    def p_target(inputs):
        with ce.no_grad():
            p = nn.functional.softmax(model(ce.tensor(inputs)), dim=1).numpy()
        return p[np.arange(len(target)), target]

    adv = pgd(model, x, target, eps, steps=10, norm=norm, targeted=True, clip=(0.0, 1.0),
              seed=1)
    before, after = p_target(x), p_target(adv)
    assert np.mean(after > before) > 0.9
    assert np.mean(np.log(after) - np.log(before)) > 1.0  # e-fold, on average


def test_accuracy_vs_epsilon(fitted):
    model, x, y = fitted
    curve = accuracy_vs_epsilon(model, x, y, [0.0, 0.05, 0.2], attack="fgsm", batch_size=40,
                                clip=(0.0, 1.0))
    assert curve["epsilon"] == [0.0, 0.05, 0.2]
    assert curve["accuracy"][0] == pytest.approx(_accuracy(model, x, y))
    assert curve["accuracy"][2] < curve["accuracy"][0]
    loader = DataLoader(TensorDataset(ce.tensor(x), ce.tensor(y)), batch_size=32)
    by_loader = accuracy_vs_epsilon(model, loader, epsilons=[0.0, 0.05], attack="pgd", steps=3,
                                    seed=0)
    assert by_loader["accuracy"][0] == curve["accuracy"][0]
    assert by_loader["accuracy"][1] <= curve["accuracy"][0]


def test_attacks_leave_the_model_untouched(fitted):
    model, x, y = fitted
    grads = [None if p.grad is None else p.grad.numpy().copy() for p in model.parameters()]
    running = [b.numpy().copy() for b in model.buffers()]
    model.train()
    try:
        g = input_gradient(model, x[:4], y[:4])
        assert g.shape == (4, 1, 8, 8) and np.abs(g).max() > 0
        pgd(model, x[:4], y[:4], 0.1, steps=2)
        fgsm(model, x[:4], y[:4], 0.1)
        assert all(m.training for m in model.modules())
        for before, p in zip(grads, model.parameters()):
            assert (p.grad is None) if before is None else np.array_equal(p.grad.numpy(), before)
        assert all(p.requires_grad for p in model.parameters())
        assert all(np.array_equal(a, b.numpy()) for a, b in zip(running, model.buffers()))
    finally:
        model.eval()


def test_adversarial_training_through_trainer():
    ce.manual_seed(0)
    model = _net(ce)
    x, y = _data(64, seed=3)
    calls = []

    class Counting(Attack):
        def __call__(self, model, xb, yb):
            calls.append(model.training)
            return super().__call__(model, xb, yb)

    loader = DataLoader(TensorDataset(ce.tensor(x), ce.tensor(y)), batch_size=32)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.Adam(model.parameters(), lr=1e-2),
                      adversary=Counting("fgsm", eps=0.05, clip=(0.0, 1.0)),
                      adversarial_weight=0.5, seed=0)
    history = trainer.fit(loader, loader, epochs=3)
    assert len(calls) == 6 and all(calls)  # every training batch, model in training mode
    assert history["train_loss"][-1] < history["train_loss"][0]
    with pytest.raises(TypeError, match="adversary must be a callable"):
        Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                adversary="pgd")
    with pytest.raises(ValueError, match="adversarial_weight"):
        Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                adversary=Attack("fgsm", eps=0.1), adversarial_weight=2)


def test_argument_errors(fitted):
    model, x, y = fitted
    with pytest.raises(ValueError, match="fgsm: eps must be finite and >= 0"):
        fgsm(model, x, y, -0.1)
    with pytest.raises(TypeError, match="fgsm: eps must be a number"):
        fgsm(model, x, y, "0.1")
    with pytest.raises(TypeError, match="fgsm: x must be a Tensor or numpy array"):
        fgsm(model, x.tolist(), y, 0.1)
    with pytest.raises(TypeError, match="fgsm: x must be floating point"):
        fgsm(model, x.astype(np.int64), y, 0.1)
    with pytest.raises(ValueError, match="fgsm: y must hold one label"):
        fgsm(model, x, y[:3], 0.1)
    with pytest.raises(ValueError, match="fgsm: clip must have lo < hi"):
        fgsm(model, x, y, 0.1, clip=(1, 0))
    with pytest.raises(TypeError, match="pgd: clip must be None or a \\(lo, hi\\)"):
        pgd(model, x, y, 0.1, clip=1.0)
    with pytest.raises(ValueError, match="pgd: norm must be one of"):
        pgd(model, x, y, 0.1, norm="l1")
    with pytest.raises(ValueError, match="pgd: steps must be a positive int"):
        pgd(model, x, y, 0.1, steps=0)
    with pytest.raises(TypeError, match="pgd: seed"):
        pgd(model, x, y, 0.1, seed="a")
    with pytest.raises(ValueError, match="accuracy_vs_epsilon: attack must be one of"):
        accuracy_vs_epsilon(model, x, y, attack="cw")
    with pytest.raises(ValueError, match="accuracy_vs_epsilon: y must be class labels"):
        accuracy_vs_epsilon(model, x, np.zeros((len(x), 2), np.int64), epsilons=[0.0])
    with pytest.raises(ValueError, match="Attack: eps is required"):
        Attack("pgd")
    with pytest.raises(ValueError, match="Attack: method"):
        Attack("deepfool", eps=0.1)
