"""Learning-rate schedulers against torch.optim.lr_scheduler (the lr sequence, momentum for
OneCycleLR), state_dict round trips and bad arguments."""

import numpy as np
import pytest

from convengine import nn, optim
from convengine.optim import lr_scheduler as S
from conftest import tolerance

RTOL, ATOL = tolerance("float64", "schedule")


def _torch():
    return pytest.importorskip("torch")


def _pair(opt_name="SGD", opt_kwargs=None, groups=False):
    torch = _torch()
    opt_kwargs = opt_kwargs or dict(lr=0.1, momentum=0.9)
    ours_p = [nn.Parameter(np.ones(2, np.float32)), nn.Parameter(np.ones(1, np.float32))]
    theirs_p = [torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(1))]
    if groups:
        ours_p = [{"params": [ours_p[0]]}, {"params": [ours_p[1]], "lr": 0.02}]
        theirs_p = [{"params": [theirs_p[0]]}, {"params": [theirs_p[1]], "lr": 0.02}]
    return (getattr(optim, opt_name)(ours_p, **opt_kwargs),
            getattr(torch.optim, opt_name)(theirs_p, **opt_kwargs))


CASES = [
    ("StepLR", dict(step_size=3, gamma=0.5)),
    ("MultiStepLR", dict(milestones=[2, 5, 5, 9], gamma=0.3)),
    ("ExponentialLR", dict(gamma=0.9)),
    ("CosineAnnealingLR", dict(T_max=7, eta_min=0.001)),
    ("LinearLR", dict(start_factor=0.1, total_iters=4)),
    ("LinearLR", dict(start_factor=1.0, end_factor=0.2, total_iters=6)),
    ("OneCycleLR", dict(max_lr=0.5, total_steps=25)),
    ("OneCycleLR", dict(max_lr=[0.5, 0.2], epochs=5, steps_per_epoch=5,
                        anneal_strategy="linear", three_phase=True, pct_start=0.25)),
]


@pytest.mark.parametrize("name,kwargs", CASES)
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_lr_sequence_matches_torch(name, kwargs, opt_name):
    torch = _torch()
    opt_kwargs = dict(lr=0.1, momentum=0.9) if opt_name == "SGD" else dict(lr=0.1)
    opt_o, opt_t = _pair(opt_name, opt_kwargs, groups=True)
    sched_o = getattr(S, name)(opt_o, **kwargs)
    sched_t = getattr(torch.optim.lr_scheduler, name)(opt_t, **kwargs)
    for _ in range(24):
        assert np.allclose(sched_o.get_last_lr(), sched_t.get_last_lr(), rtol=RTOL, atol=ATOL)
        for go, gt in zip(opt_o.param_groups, opt_t.param_groups):
            for key in ("momentum", "betas"):
                if key in gt:
                    assert np.allclose(go[key], gt[key], rtol=RTOL, atol=ATOL)
        opt_o.step(), opt_t.step()
        sched_o.step(), sched_t.step()


def test_sequential_warmup_then_cosine_matches_torch():
    torch = _torch()
    opt_o, opt_t = _pair()
    tS = torch.optim.lr_scheduler
    seq_o = S.SequentialLR(opt_o, [S.LinearLR(opt_o, 0.1, total_iters=3),
                                   S.CosineAnnealingLR(opt_o, T_max=10)], milestones=[3])
    seq_t = tS.SequentialLR(opt_t, [tS.LinearLR(opt_t, 0.1, total_iters=3),
                                    tS.CosineAnnealingLR(opt_t, T_max=10)], milestones=[3])
    for _ in range(14):
        assert np.allclose(seq_o.get_last_lr(), seq_t.get_last_lr(), rtol=RTOL, atol=ATOL)
        opt_o.step(), opt_t.step()
        seq_o.step(), seq_t.step()


@pytest.mark.parametrize("kwargs", [dict(), dict(mode="max", factor=0.5, patience=1,
                                                  threshold_mode="abs", cooldown=1,
                                                  min_lr=0.01)])
def test_reduce_on_plateau_matches_torch(kwargs):
    torch = _torch()
    opt_o, opt_t = _pair()
    if "patience" not in kwargs:
        kwargs = dict(patience=2)
    sched_o = S.ReduceLROnPlateau(opt_o, **kwargs)
    sched_t = torch.optim.lr_scheduler.ReduceLROnPlateau(opt_t, **kwargs)
    metrics = [1.0, 0.9, 0.95, 0.95, 0.96, 0.97, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
    for m in metrics:
        sched_o.step(m), sched_t.step(m)
        assert np.allclose(sched_o.get_last_lr(), sched_t.get_last_lr(), rtol=RTOL, atol=ATOL)


def test_scheduler_state_dict_resume():
    opt_a, _ = _pair()
    sched_a = S.CosineAnnealingLR(opt_a, T_max=10)
    for _ in range(4):
        opt_a.step(), sched_a.step()
    opt_b, _ = _pair()
    sched_b = S.CosineAnnealingLR(opt_b, T_max=10)
    opt_b.load_state_dict(opt_a.state_dict())
    sched_b.load_state_dict(sched_a.state_dict())
    assert "optimizer" not in sched_a.state_dict()
    for _ in range(5):
        opt_a.step(), sched_a.step()
        opt_b.step(), sched_b.step()
        assert sched_a.get_last_lr() == sched_b.get_last_lr()
    plateau = S.ReduceLROnPlateau(opt_a, patience=0)
    plateau.step(1.0), plateau.step(2.0)
    clone = S.ReduceLROnPlateau(opt_b)
    clone.load_state_dict(plateau.state_dict())
    assert clone.patience == 0 and clone.best == 1.0


def test_scheduler_bad_arguments():
    opt, _ = _pair()
    with pytest.raises(TypeError, match="not an Optimizer"):
        S.StepLR(object(), 3)
    with pytest.raises(ValueError, match="step_size"):
        S.StepLR(opt, 0)
    with pytest.raises(ValueError, match="T_max"):
        S.CosineAnnealingLR(opt, T_max=0)
    with pytest.raises(ValueError, match="start_factor"):
        S.LinearLR(opt, start_factor=0)
    with pytest.raises(ValueError, match="total_steps"):
        S.OneCycleLR(opt, max_lr=1.0)
    with pytest.raises(ValueError, match="factor"):
        S.ReduceLROnPlateau(opt, factor=1.5)
    with pytest.raises(ValueError, match="mode"):
        S.ReduceLROnPlateau(opt, mode="up")
    one = S.OneCycleLR(opt, max_lr=1.0, total_steps=2)
    one.step()
    with pytest.raises(ValueError, match="total steps"):
        one.step(), one.step()
