"""Module machinery: registration, traversal, modes, gradients, hooks, repr, state_dict,
containers, Parameter and nn.init."""

import collections
import math

import numpy as np
import pytest

import convengine as ce
from convengine import nn
from convengine.nn import init


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3)
        self.bn = nn.BatchNorm1d(3)
        self.head = nn.Sequential(nn.ReLU(), nn.Linear(3, 2, bias=False))
        self.register_buffer("scale", ce.ones(2))
        self.register_buffer("scratch", ce.zeros(2), persistent=False)

    def forward(self, x):
        return self.head(self.bn(self.fc1(x))) * self.scale


def test_registration_and_traversal_names():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "head.1.weight"]
    assert [n for n, _ in net.named_buffers()] == [
        "scale", "scratch", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked"]
    assert [n for n, _ in net.named_children()] == ["fc1", "bn", "head"]
    assert [n for n, _ in net.named_modules()] == ["", "fc1", "bn", "head", "head.0", "head.1"]
    assert len(list(net.parameters())) == 5
    assert len(list(net.parameters(recurse=False))) == 0
    assert net.get_submodule("head.1") is net.head[1]
    assert net.get_parameter("head.1.weight") is net.head[1].weight
    assert list(net.state_dict()) == [
        "scale", "fc1.weight", "fc1.bias", "bn.weight", "bn.bias", "bn.running_mean",
        "bn.running_var", "bn.num_batches_tracked", "head.1.weight"]


def test_setattr_rules():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError):
        m.weight = ce.ones(2, 2)  # a plain tensor cannot replace a parameter
    m.bias = None
    assert "bias" not in m.state_dict()
    m.extra = nn.Parameter(ce.zeros(3))
    assert "extra" in dict(m.named_parameters())
    del m.extra
    assert "extra" not in dict(m.named_parameters())
    with pytest.raises(AttributeError):
        m.missing
    with pytest.raises(KeyError):
        m.register_buffer("a.b", ce.zeros(1))

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(ce.zeros(1))

    with pytest.raises(AttributeError, match="__init__"):
        Early()


def test_shared_parameters_come_once():
    lin = nn.Linear(2, 2)
    seq = nn.Sequential(lin, lin)
    assert len(list(seq.parameters())) == 2
    assert [n for n, _ in seq.named_modules()] == ["", "0"]


def test_train_eval_zero_grad_requires_grad_apply():
    net = Net()
    assert net.training and net.head[0].training
    net.eval()
    assert not net.training and not net.bn.training
    net.train()
    assert net.bn.training
    with pytest.raises(ValueError):
        net.train("yes")
    x = ce.randn(5, 4)
    net(x).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.data.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    net.fc1.requires_grad_(False)  # freeze for transfer learning
    net(x).sum().backward()
    assert net.fc1.weight.grad is None and net.head[1].weight.grad is not None
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen[-1] == "Net" and seen[0] == "Linear"


def test_forward_hooks():
    lin = nn.Linear(2, 2)
    captured = []
    handle = lin.register_forward_hook(lambda m, inp, out: captured.append(out.shape))
    lin(ce.ones(3, 2))
    handle.remove()
    lin(ce.ones(3, 2))
    assert captured == [(3, 2)]
    pre = lin.register_forward_pre_hook(lambda m, inp: (inp[0] * 0,))
    out = lin(ce.ones(1, 2))
    np.testing.assert_allclose(out.data, lin.bias.data[None])
    pre.remove()


def test_double_keeps_parameter_identity():
    lin = nn.Linear(2, 3)
    w = lin.weight
    lin.double()
    assert lin.weight is w and w.dtype == np.float64
    with pytest.raises(TypeError):
        lin.to(np.int32)


def test_state_dict_roundtrip_strict_and_non_strict():
    ce.manual_seed(0)
    a, b = Net(), Net()
    b.load_state_dict(a.state_dict())
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values()):
        np.testing.assert_array_equal(pa.data, pb.data, err_msg=name)
    sd = a.state_dict()
    # state_dict shares memory; copies snapshot it
    assert np.shares_memory(sd["fc1.weight"].data, a.fc1.weight.data)
    partial = {k: v for k, v in sd.items() if not k.startswith("head")}
    partial["extra.key"] = ce.zeros(1)
    with pytest.raises(RuntimeError, match="Missing key.*head.1.weight"):
        b.load_state_dict(partial)
    with pytest.raises(ValueError, match="Unexpected key.*extra.key"):
        b.load_state_dict(partial)
    result = b.load_state_dict(partial, strict=False)
    assert result.missing_keys == ["head.1.weight"]
    assert result.unexpected_keys == ["extra.key"]
    bad = dict(sd)
    bad["fc1.weight"] = ce.zeros(3, 5)
    with pytest.raises(nn.StateDictError, match=r"size mismatch for fc1.weight.*\(3, 5\).*"
                                                r"\(3, 4\)"):
        b.load_state_dict(bad, strict=False)
    with pytest.raises(TypeError):
        b.load_state_dict([1, 2])


def test_repr_matches_torch_layout():
    seq = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Dropout(0.2)))
    assert repr(seq) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3, bias=True)\n"
        "  (1): Sequential(\n"
        "    (0): ReLU()\n"
        "    (1): Dropout(p=0.2, inplace=False)\n"
        "  )\n"
        ")")


def test_containers():
    seq = nn.Sequential(collections.OrderedDict([("a", nn.Identity()), ("b", nn.ReLU())]))
    assert list(seq.state_dict()) == [] and list(dict(seq.named_children())) == ["a", "b"]
    assert isinstance(seq[-1], nn.ReLU) and isinstance(seq[0:1], nn.Sequential)
    assert len(seq[0:1]) == 1
    seq.append(nn.Tanh())
    del seq[0]
    assert [n for n, _ in seq.named_children()] == ["0", "1"]
    ml = nn.ModuleList([nn.Linear(1, 1) for _ in range(3)])
    ml.append(nn.Linear(1, 2))
    ml += [nn.ReLU()]
    assert len(ml) == 5 and list(ml.state_dict())[-1] == "3.bias"
    with pytest.raises(IndexError):
        ml[7]
    md = nn.ModuleDict({"enc": nn.Linear(2, 2)})
    md["dec"] = nn.Linear(2, 1)
    assert list(md.keys()) == ["enc", "dec"] and "dec.weight" in md.state_dict()
    pl = nn.ParameterList([nn.Parameter(ce.zeros(2)), ce.ones(3)])
    assert [n for n, _ in pl.named_parameters()] == ["0", "1"]
    pd = nn.ParameterDict({"alpha": ce.zeros(1)})
    assert isinstance(pd["alpha"], nn.Parameter)


def test_parameter():
    p = nn.Parameter(ce.ones(2))
    assert p.requires_grad and p.is_leaf
    assert repr(p).startswith("Parameter containing:\ntensor(")
    with pytest.raises(TypeError):
        nn.Parameter(np.arange(3))
    assert not nn.Parameter(np.arange(3), requires_grad=False).requires_grad


def test_init_statistics_and_seeding():
    ce.manual_seed(3)
    w = nn.Parameter(np.empty((256, 128, 3), dtype=np.float32))
    init.kaiming_uniform_(w, a=math.sqrt(5))
    bound = math.sqrt(6 / ((1 + 5) * 128 * 3))
    assert np.abs(w.data).max() <= bound and np.abs(w.data).max() > 0.95 * bound
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.data.std() - math.sqrt(2 / (256 * 3))) < 0.01 * math.sqrt(2 / (256 * 3)) * 5
    init.xavier_uniform_(w)
    assert np.abs(w.data).max() <= math.sqrt(6 / (128 * 3 + 256 * 3))
    init.xavier_normal_(w, gain=2.0)
    init.constant_(w, 0.5)
    assert (w.data == 0.5).all()
    init.zeros_(w), init.ones_(w)
    assert (w.data == 1).all()
    init.normal_(w, 2.0, 0.1)
    assert abs(w.data.mean() - 2.0) < 0.01
    init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert np.abs(w.data).max() <= 0.5
    with pytest.raises(ValueError, match="fewer than 2 dimensions"):
        init.xavier_uniform_(nn.Parameter(ce.zeros(3)))
    ce.manual_seed(11)
    a = nn.Linear(5, 4).weight.data.copy()
    ce.manual_seed(11)
    np.testing.assert_array_equal(nn.Linear(5, 4).weight.data, a)


def test_calculate_gain_matches_torch():
    torch = pytest.importorskip("torch")
    for name, param in [("linear", None), ("conv2d", None), ("sigmoid", None), ("tanh", None),
                        ("relu", None), ("leaky_relu", None), ("leaky_relu", 0.2),
                        ("selu", None)]:
        assert math.isclose(init.calculate_gain(name, param),
                            torch.nn.init.calculate_gain(name, param))
    with pytest.raises(ValueError):
        init.calculate_gain("swishy")


def test_default_init_bounds_match_torch_rule():
    lin = nn.Linear(50, 7)
    assert np.abs(lin.bias.data).max() <= 1 / math.sqrt(50)
    assert np.abs(lin.weight.data).max() <= 1 / math.sqrt(50)  # kaiming(a=sqrt 5) bound
    conv = nn.Conv2d(4, 6, 3)
    assert np.abs(conv.weight.data).max() <= 1 / math.sqrt(36)
    assert conv.weight.shape == (6, 4, 3, 3)
    convt = nn.ConvTranspose2d(4, 6, 3, groups=2)
    assert convt.weight.shape == (4, 3, 3, 3)
    bn = nn.BatchNorm2d(3)
    assert (bn.weight.data == 1).all() and (bn.bias.data == 0).all()


def test_state_dict_keys_match_torch():
    torch = pytest.importorskip("torch")
    tnn = torch.nn

    def build(lib):
        return lib.Sequential(
            lib.Conv2d(1, 4, 3, padding=1), lib.BatchNorm2d(4), lib.ReLU(), lib.MaxPool2d(2),
            lib.Conv2d(4, 2, 1, bias=False),
            lib.GroupNorm(1, 2), lib.InstanceNorm2d(2, affine=True, track_running_stats=True),
            lib.Flatten(), lib.Linear(2 * 14 * 14, 3), lib.LayerNorm(3), lib.Dropout(0.1),
            lib.Identity(),
            lib.BatchNorm1d(3, affine=False), lib.BatchNorm1d(3, track_running_stats=False))

    ours, theirs = build(nn), build(tnn)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key in theirs_sd:
        assert tuple(ours_sd[key].shape) == tuple(theirs_sd[key].shape), key
    ours.load_state_dict(theirs_sd)  # torch tensors load directly
    theirs.load_state_dict({k: torch.from_numpy(np.array(v.data)) for k, v in ours_sd.items()})
    assert repr(ours) == repr(theirs)


@pytest.mark.parametrize("name,args,kwargs", [
    ("Conv1d", (4, 6, 3), dict(stride=2, padding=1, groups=2)),
    ("Conv2d", (2, 4, (3, 5)), dict(padding="same", dilation=2, padding_mode="reflect")),
    ("Conv3d", (2, 4, 3), dict(bias=False, padding="valid")),
    ("ConvTranspose1d", (4, 2, 3), dict(stride=2, output_padding=1)),
    ("ConvTranspose2d", (4, 6, 3), dict(groups=2, dilation=2)),
    ("ConvTranspose3d", (2, 2, 2), dict(stride=2, bias=False)),
    ("MaxPool2d", (3,), dict(stride=2, padding=1)),
    ("AvgPool1d", (2,), {}), ("AvgPool3d", (2,), dict(stride=1)),
    ("AdaptiveAvgPool2d", ((1, 1),), {}), ("AdaptiveMaxPool3d", (2,), {}),
    ("MaxUnpool2d", (2,), {}), ("Upsample", (), dict(scale_factor=2, mode="bilinear")),
    ("Upsample", (), dict(size=(4, 5))), ("LeakyReLU", (0.2,), {}), ("ELU", (), {}),
    ("GELU", (), dict(approximate="tanh")), ("Softmax", (), dict(dim=1)),
    ("LogSoftmax", (), dict(dim=-1)), ("Dropout3d", (0.3,), {}),
    ("InstanceNorm3d", (4,), {}), ("LayerNorm", ((2, 3),), dict(bias=False)),
    ("Flatten", (0, 2), {}), ("Unflatten", (1, (2, 3)), {}),
    ("CrossEntropyLoss", (), dict(weight=[1.0, 2.0])), ("BCEWithLogitsLoss", (),
                                                        dict(pos_weight=[3.0])),
])
def test_layer_keys_shapes_and_repr_match_torch(name, args, kwargs):
    torch = pytest.importorskip("torch")
    import torch.nn as tnn
    tkwargs = dict(kwargs)
    for key in ("weight", "pos_weight"):
        if key in tkwargs:
            tkwargs[key] = torch.tensor(tkwargs[key])
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(tnn, name)(*args, **tkwargs)
    assert repr(ours) == repr(theirs)
    ours_sd, theirs_sd = ours.state_dict(), theirs.state_dict()
    assert list(ours_sd) == list(theirs_sd)
    for key in theirs_sd:
        assert tuple(ours_sd[key].shape) == tuple(theirs_sd[key].shape), key
