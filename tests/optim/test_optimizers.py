"""Optimizers against torch.optim: the same parameter trajectory over 20 steps, param groups,
state_dict round trips and bad hyper-parameters."""

import numpy as np
import pytest

import convengine as ce
from convengine import nn, optim
from conftest import assert_close


def _torch():
    return pytest.importorskip("torch")


def _quadratic_grads(params, k):
    """Gradients of a fixed non-trivial loss, so that both libraries see the same ones."""
    return [np.sin(p + k).astype(p.dtype) + 0.1 * p for p in params]


def _run_trajectory(name, kwargs, steps=20, groups=False):
    torch = _torch()
    rng = np.random.default_rng(0)
    init = [rng.standard_normal((4, 3)).astype(np.float32),
            rng.standard_normal(5).astype(np.float32)]
    ours = [nn.Parameter(a.copy()) for a in init]
    theirs = [torch.nn.Parameter(torch.tensor(a.copy())) for a in init]
    if groups:
        ours_arg = [{"params": [ours[0]]}, {"params": [ours[1]], "lr": 0.05}]
        theirs_arg = [{"params": [theirs[0]]}, {"params": [theirs[1]], "lr": 0.05}]
    else:
        ours_arg, theirs_arg = ours, theirs
    opt_o = getattr(optim, name)(ours_arg, **kwargs)
    opt_t = getattr(torch.optim, name)(theirs_arg, foreach=False, **kwargs)
    for k in range(steps):
        grads = _quadratic_grads([p.data for p in ours], k)
        for p, g in zip(ours, grads):
            p.grad = ce.tensor(g)
        for p, g in zip(theirs, grads):
            p.grad = torch.tensor(g)
        opt_o.step()
        opt_t.step()
    for p, q in zip(ours, theirs):
        assert_close(p.data, q.detach().numpy(), "reduction")
    return opt_o, opt_t, ours


@pytest.mark.parametrize("name,kwargs", [
    ("SGD", dict(lr=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.3, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.5, maximize=True)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    ("Adam", dict(lr=0.01, amsgrad=True)),
    ("AdamW", dict(lr=0.01)),
    ("AdamW", dict(lr=0.02, weight_decay=0.3, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, momentum=0.9, centered=True, weight_decay=0.01)),
    ("RMSprop", dict(lr=0.005, alpha=0.9, eps=1e-6, centered=True)),
])
def test_trajectory_matches_torch_over_20_steps(name, kwargs):
    _run_trajectory(name, kwargs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "RMSprop"])
def test_param_groups_match_torch(name):
    kwargs = dict(lr=0.01, momentum=0.9) if name == "SGD" else dict(lr=0.01)
    opt_o, opt_t, _ = _run_trajectory(name, kwargs, steps=5, groups=True)
    assert [g["lr"] for g in opt_o.param_groups] == [g["lr"] for g in opt_t.param_groups]


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)),
                                         ("Adam", dict(lr=0.01)), ("RMSprop", dict(lr=0.01))])
def test_state_dict_roundtrip_continues_the_same_trajectory(name, kwargs):
    rng = np.random.default_rng(1)
    start = rng.standard_normal(6).astype(np.float32)

    def run(opt, p, ks):
        for k in ks:
            p.grad = ce.tensor(_quadratic_grads([p.data], k)[0])
            opt.step()

    p1 = nn.Parameter(start.copy())
    opt1 = getattr(optim, name)([p1], **kwargs)
    run(opt1, p1, range(10))
    p2 = nn.Parameter(start.copy())
    opt2 = getattr(optim, name)([p2], **kwargs)
    run(opt2, p2, range(5))
    sd = opt2.state_dict()
    assert list(sd) == ["state", "param_groups"] and sd["param_groups"][0]["params"] == [0]
    p3 = nn.Parameter(p2.data.copy())
    opt3 = getattr(optim, name)([p3], lr=123.0)
    opt3.load_state_dict(sd)
    assert opt3.param_groups[0]["lr"] == kwargs["lr"]
    run(opt3, p3, range(5, 10))
    np.testing.assert_allclose(p3.data, p1.data, rtol=1e-6, atol=1e-7)


def test_state_dict_layout_matches_torch_keys():
    torch = _torch()
    opt_o, opt_t, _ = _run_trajectory("Adam", dict(lr=0.01), steps=2, groups=True)
    sd_o, sd_t = opt_o.state_dict(), opt_t.state_dict()
    assert sd_o["state"].keys() == sd_t["state"].keys()
    for k in sd_t["state"]:
        assert set(sd_o["state"][k]) == set(sd_t["state"][k])
    for go, gt in zip(sd_o["param_groups"], sd_t["param_groups"]):
        assert go["params"] == gt["params"]
        for key in ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize"):
            assert go[key] == gt[key]
    # torch's state loads into ours (tensors converted)
    opt_o.load_state_dict(sd_t)
    assert isinstance(opt_o.state[opt_o.param_groups[0]["params"][0]]["exp_avg"], np.ndarray)


def test_training_a_model_reduces_the_loss():
    ce.manual_seed(0)
    rng = np.random.default_rng(0)
    x = ce.tensor(rng.standard_normal((64, 5)).astype(np.float32))
    y = ce.tensor((x.data @ rng.standard_normal(5) > 0).astype(np.int64))
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 2))
    opt = optim.AdamW(model.parameters(), lr=0.05)
    first = None
    for _ in range(30):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        first = first if first is not None else loss.item()
    assert loss.item() < 0.3 * first


def test_closure_zero_grad_and_skipped_params():
    p = nn.Parameter(np.ones(3, np.float32))
    q = nn.Parameter(np.ones(2, np.float32))
    opt = optim.SGD([p, q], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    assert opt.step(closure).item() == 3.0
    np.testing.assert_allclose(p.data, 0.0)
    np.testing.assert_allclose(q.data, 1.0)  # no gradient: untouched
    opt.zero_grad(set_to_none=False)
    assert (p.grad.data == 0).all()
    opt.zero_grad()
    assert p.grad is None


def test_bad_arguments():
    p = nn.Parameter(np.ones(2, np.float32))
    with pytest.raises(ValueError, match="lr"):
        optim.SGD([p], lr=-1)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD([p], lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([p], lr=0.1, nesterov=True)
    with pytest.raises(ValueError, match="beta"):
        optim.Adam([p], betas=(1.0, 0.9))
    with pytest.raises(ValueError, match="weight_decay"):
        optim.AdamW([p], weight_decay=-1)
    with pytest.raises(ValueError, match="empty"):
        optim.Adam([])
    with pytest.raises(TypeError, match="Tensors"):
        optim.Adam([np.ones(2)])
    with pytest.raises(TypeError, match="iterable"):
        optim.Adam(p)
    with pytest.raises(ValueError, match="more than one parameter group"):
        optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1)
    opt = optim.SGD([p], lr=0.1)
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="non-leaf"):
        optim.SGD([p * 2], lr=0.1)
