"""Layers against PyTorch (same weights via state_dict -> same outputs, input and parameter
gradients, running statistics), gradcheck of their Functions in float64, and bad input."""

import numpy as np
import pytest

import convengine as ce
from convengine import nn
from convengine.nn import functional as F
from conftest import assert_close


def _torch():
    return pytest.importorskip("torch")


def compare_with_torch(ours, theirs, x, steps=1, kind="vs_torch", train=True):
    """Copies theirs' state into ours, runs forward + backward `steps` times on both and
    compares outputs, gradients and the state afterwards."""
    torch = _torch()
    ours.load_state_dict(theirs.state_dict())
    ours.train(train), theirs.train(train)
    rng = np.random.default_rng(0)
    for _ in range(steps):
        xo = ce.tensor(x, requires_grad=True)
        xt = torch.tensor(x, requires_grad=True)
        out_o, out_t = ours(xo), theirs(xt)
        assert out_o.shape == tuple(out_t.shape)
        assert_close(out_o.data, out_t.detach().numpy(), kind)
        seed = rng.standard_normal(out_o.shape).astype(x.dtype)
        out_o.backward(seed)
        out_t.backward(torch.tensor(seed))
        assert_close(xo.grad.data, xt.grad.numpy(), kind)
    their_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad.data, their_params[name].grad.numpy(), kind)
    their_state = theirs.state_dict()
    for name, value in ours.state_dict().items():
        if value.dtype.kind == "i":
            np.testing.assert_array_equal(value.data, their_state[name].numpy())
        else:
            assert_close(value.data, their_state[name].numpy(), kind)


def test_linear_matches_torch(rng):
    torch = _torch()
    x = rng.standard_normal((5, 3, 7)).astype(np.float32)
    compare_with_torch(nn.Linear(7, 4), torch.nn.Linear(7, 4), x)
    compare_with_torch(nn.Linear(7, 4, bias=False), torch.nn.Linear(7, 4, bias=False), x)


@pytest.mark.parametrize("cls,shape", [("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 5)),
                                       ("BatchNorm2d", (4, 3, 5, 6)),
                                       ("BatchNorm3d", (2, 3, 3, 4, 2))])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batchnorm_train_and_eval_match_torch(cls, shape, momentum, rng):
    torch = _torch()
    ours, theirs = getattr(nn, cls)(3, momentum=momentum), getattr(torch.nn, cls)(
        3, momentum=momentum)
    with torch.no_grad():
        theirs.weight.uniform_(0.5, 1.5), theirs.bias.uniform_(-1, 1)
    x = (rng.standard_normal(shape) * 3 + 1).astype(np.float32)
    compare_with_torch(ours, theirs, x, steps=3, kind="reduction")
    assert int(ours.num_batches_tracked.item()) == 3
    compare_with_torch(ours, theirs, x * 0.5, kind="reduction", train=False)


@pytest.mark.parametrize("kwargs", [dict(affine=False), dict(track_running_stats=False),
                                    dict(bias=False)])
def test_batchnorm_options_match_torch(kwargs, rng):
    torch = _torch()
    x = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    compare_with_torch(nn.BatchNorm2d(2, **kwargs), torch.nn.BatchNorm2d(2, **kwargs), x,
                       steps=2, kind="reduction")
    compare_with_torch(nn.BatchNorm2d(2, **kwargs), torch.nn.BatchNorm2d(2, **kwargs), x,
                       kind="reduction", train=False)


def test_batchnorm_errors():
    bn = nn.BatchNorm2d(3)
    with pytest.raises(ValueError, match="expected 4D input"):
        bn(ce.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="3 channels"):
        bn(ce.zeros(2, 4, 2, 2))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(ce.zeros(1, 3))
    with pytest.raises(ValueError, match="momentum"):
        nn.BatchNorm1d(3, momentum=2.0)
    with pytest.raises(ValueError, match="running_mean"):
        F.batch_norm(ce.zeros(2, 3), ce.zeros(4), ce.ones(3))


@pytest.mark.parametrize("cls,shape,kwargs", [
    ("InstanceNorm1d", (3, 4, 6), {}),
    ("InstanceNorm2d", (2, 4, 3, 5), dict(affine=True)),
    ("InstanceNorm3d", (2, 4, 2, 3, 3), dict(affine=True, track_running_stats=True)),
])
def test_instancenorm_matches_torch(cls, shape, kwargs, rng):
    torch = _torch()
    x = (rng.standard_normal(shape) * 2 - 1).astype(np.float32)
    ours, theirs = getattr(nn, cls)(4, **kwargs), getattr(torch.nn, cls)(4, **kwargs)
    if kwargs.get("affine"):
        with torch.no_grad():
            theirs.weight.uniform_(0.5, 1.5), theirs.bias.uniform_(-1, 1)
    compare_with_torch(ours, theirs, x, steps=2, kind="reduction")
    compare_with_torch(ours, theirs, x, kind="reduction", train=False)


def test_layernorm_and_groupnorm_match_torch(rng):
    torch = _torch()
    x = rng.standard_normal((3, 4, 5, 6)).astype(np.float32)
    for ours, theirs in [(nn.LayerNorm((5, 6)), torch.nn.LayerNorm((5, 6))),
                         (nn.LayerNorm(6, bias=False), torch.nn.LayerNorm(6, bias=False)),
                         (nn.LayerNorm(6, elementwise_affine=False),
                          torch.nn.LayerNorm(6, elementwise_affine=False)),
                         (nn.GroupNorm(2, 4), torch.nn.GroupNorm(2, 4)),
                         (nn.GroupNorm(4, 4, affine=False),
                          torch.nn.GroupNorm(4, 4, affine=False))]:
        with torch.no_grad():
            for p in theirs.parameters():
                p.uniform_(0.5, 1.5)
        compare_with_torch(ours, theirs, x, kind="reduction")
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match="normalized_shape"):
        nn.LayerNorm(3)(ce.zeros(2, 4))


def test_normalisation_functions_gradcheck(rng):
    x = ce.tensor(rng.standard_normal((3, 2, 4)), requires_grad=True)
    w = ce.tensor(rng.uniform(0.5, 1.5, 2), requires_grad=True)
    b = ce.tensor(rng.standard_normal(2), requires_grad=True)
    rm, rv = ce.zeros(2, dtype=np.float64), ce.ones(2, dtype=np.float64)
    assert ce.gradcheck(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True),
                        (x, w, b))
    assert ce.gradcheck(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False),
                        (x, w, b))
    assert ce.gradcheck(lambda x, w, b: F.group_norm(x, 1, w, b), (x, w, b))
    assert ce.gradcheck(lambda x: F.layer_norm(x, (4,)), (x,))
    assert ce.gradcheck(lambda x, w, b: F.instance_norm(x, weight=w, bias=b), (x, w, b))


def test_dropout_is_seeded_scaled_and_off_in_eval():
    x = ce.ones(2000)
    ce.manual_seed(5)
    a = F.dropout(x, 0.25).data
    ce.manual_seed(5)
    np.testing.assert_array_equal(F.dropout(x, 0.25).data, a)
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((a == 0).mean() - 0.25) < 0.05
    drop = nn.Dropout(0.5).eval()
    assert drop(x) is x
    x = ce.ones(4, 6, 3, 3, requires_grad=True)
    out = nn.Dropout2d(0.5)(x)
    per_channel = out.data.reshape(4, 6, -1)
    assert (per_channel.min(axis=2) == per_channel.max(axis=2)).all()  # whole maps dropped
    out.sum().backward()
    np.testing.assert_array_equal(x.grad.data, out.data)
    out3 = nn.Dropout3d(0.5)(ce.ones(2, 3, 2, 2, 2)).data.reshape(2, 3, -1)
    assert (out3.min(axis=2) == out3.max(axis=2)).all()
    assert (F.dropout(ce.ones(3), 1.0).data == 0).all()
    with pytest.raises(ValueError, match="between 0 and 1"):
        nn.Dropout(1.5)
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, -0.1)
    with pytest.raises(ValueError, match="dropout3d"):
        F.dropout3d(ce.ones(2, 3))


@pytest.mark.parametrize("shape,kwargs", [
    ((1, 2, 5), dict(scale_factor=2, mode="nearest")),
    ((1, 2, 5), dict(size=8, mode="linear")),
    ((1, 2, 5), dict(size=3, mode="linear", align_corners=True)),
    ((2, 1, 4, 5), dict(scale_factor=2, mode="bilinear")),
    ((2, 1, 4, 5), dict(scale_factor=(1.5, 0.5), mode="bilinear", align_corners=True)),
    ((2, 1, 4, 5), dict(size=(7, 3), mode="nearest")),
    ((2, 1, 4, 5), dict(size=(7, 3), mode="nearest-exact")),
    ((2, 1, 6, 5), dict(size=(4, 2), mode="area")),
    ((2, 1, 4, 5), dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True)),
    ((1, 2, 3, 4, 2), dict(scale_factor=2, mode="trilinear")),
    ((1, 2, 3, 4, 2), dict(size=(5, 2, 3), mode="trilinear", align_corners=True)),
    ((1, 2, 3, 4, 2), dict(scale_factor=3, mode="nearest")),
])
def test_interpolate_matches_torch(shape, kwargs, rng):
    torch = _torch()
    x = rng.standard_normal(shape).astype(np.float32)
    xo, xt = ce.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out_o = F.interpolate(xo, **kwargs)
    out_t = torch.nn.functional.interpolate(xt, **kwargs)
    assert_close(out_o.data, out_t.detach().numpy(), "reduction")
    seed = rng.standard_normal(out_o.shape).astype(np.float32)
    out_o.backward(seed)
    out_t.backward(torch.tensor(seed))
    assert_close(xo.grad.data, xt.grad.numpy(), "reduction")
    up = nn.Upsample(**{k: v for k, v in kwargs.items() if k != "recompute_scale_factor"})
    assert up(ce.tensor(x)).shape == tuple(out_t.shape) or "recompute_scale_factor" in kwargs


def test_interpolate_gradcheck_and_errors(rng):
    x = ce.tensor(rng.standard_normal((1, 1, 3, 4)), requires_grad=True)
    assert ce.gradcheck(lambda x: F.interpolate(x, size=(5, 3), mode="bilinear"), (x,))
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x, size=3, scale_factor=2)
    with pytest.raises(ValueError, match="bilinear"):
        F.interpolate(ce.zeros(1, 1, 4), size=3, mode="bilinear")
    with pytest.raises(ValueError, match="align_corners"):
        F.interpolate(x, size=3, mode="nearest", align_corners=True)
    with pytest.raises(ValueError, match="mode"):
        F.interpolate(x, size=3, mode="cubic")
    with pytest.raises(ValueError, match="size"):
        F.interpolate(x, size=(3, 3, 3))


def test_flatten_identity_sequential_forward(rng):
    torch = _torch()
    x = rng.standard_normal((2, 3, 4)).astype(np.float32)
    ours = nn.Sequential(nn.Identity(), nn.Flatten(), nn.Linear(12, 5), nn.ReLU(),
                         nn.Linear(5, 2))
    theirs = torch.nn.Sequential(torch.nn.Identity(), torch.nn.Flatten(),
                                 torch.nn.Linear(12, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2))
    compare_with_torch(ours, theirs, x)
    assert nn.Unflatten(1, (2, 6))(ce.zeros(3, 12)).shape == (3, 2, 6)


def test_frozen_backbone_transfer_learning(rng):
    """Freeze the feature extractor, train only the new head: only head gradients appear."""
    ce.manual_seed(0)
    backbone = nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU())
    model = nn.Sequential(backbone, nn.Linear(8, 2))
    before = {k: v.data.copy() for k, v in backbone.state_dict().items()}
    backbone.requires_grad_(False)
    backbone.eval()  # frozen statistics too
    x = ce.tensor(rng.standard_normal((10, 6)).astype(np.float32))
    y = ce.tensor(rng.integers(0, 2, 10))
    F.cross_entropy(model(x), y).backward()
    assert all(p.grad is None for p in backbone.parameters())
    assert model[1].weight.grad is not None
    for k, v in backbone.state_dict().items():
        np.testing.assert_array_equal(v.data, before[k])
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert len(trainable) == 2


# ----- layers whose functional ops other engineers provide: run when they exist ----------------

def _needs(*names):
    missing = [n for n in names if not hasattr(F, n)]
    if missing:
        pytest.skip(f"nn.functional lacks {', '.join(missing)} (not built yet)")


@pytest.mark.parametrize("name,args,kwargs,shape", [
    ("Conv1d", (2, 4, 3), dict(stride=2, padding=1), (2, 2, 9)),
    ("Conv2d", (2, 4, 3), dict(padding=1, groups=2), (2, 2, 6, 5)),
    ("Conv2d", (2, 3, (3, 2)), dict(padding="same", padding_mode="reflect"), (1, 2, 5, 6)),
    ("Conv2d", (2, 3, 3), dict(padding=1, padding_mode="circular", bias=False), (1, 2, 4, 4)),
    ("Conv2d", (2, 3, 3), dict(padding=2, padding_mode="replicate", dilation=2), (1, 2, 6, 6)),
    ("Conv3d", (2, 2, 2), dict(stride=(1, 2, 1)), (1, 2, 4, 4, 3)),
    ("ConvTranspose1d", (2, 3, 3), dict(stride=2, output_padding=1), (2, 2, 4)),
    ("ConvTranspose2d", (4, 2, 3), dict(stride=2, padding=1, groups=2), (1, 4, 3, 4)),
    ("ConvTranspose3d", (2, 2, 2), dict(stride=2), (1, 2, 2, 3, 2)),
])
def test_conv_layers_match_torch(name, args, kwargs, shape, rng):
    torch = _torch()
    op = name.lower().replace("convtranspose", "conv_transpose")
    _needs(op, "pad")
    x = rng.standard_normal(shape).astype(np.float32)
    compare_with_torch(getattr(nn, name)(*args, **kwargs),
                       getattr(torch.nn, name)(*args, **kwargs), x, kind="conv_vs_torch")


def test_conv_transpose_output_size(rng):
    torch = _torch()
    _needs("conv_transpose2d")
    ours, theirs = nn.ConvTranspose2d(2, 2, 3, stride=2), torch.nn.ConvTranspose2d(2, 2, 3,
                                                                                     stride=2)
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal((1, 2, 4, 4)).astype(np.float32)
    out_o = ours(ce.tensor(x), output_size=(10, 9))
    out_t = theirs(torch.tensor(x), output_size=(10, 9))
    assert_close(out_o.data, out_t.detach().numpy(), "conv_vs_torch")
    with pytest.raises(ValueError, match="output size"):
        ours(ce.tensor(x), output_size=(20, 20))


@pytest.mark.parametrize("name,args,kwargs,shape", [
    ("MaxPool1d", (2,), {}, (2, 3, 8)),
    ("MaxPool2d", (3,), dict(stride=2, padding=1), (2, 3, 7, 6)),
    ("MaxPool3d", (2,), dict(ceil_mode=True), (1, 2, 5, 4, 3)),
    ("AvgPool1d", (3,), dict(stride=1, padding=1), (2, 3, 8)),
    ("AvgPool2d", (2,), dict(count_include_pad=False, padding=1), (2, 3, 5, 6)),
    ("AvgPool3d", (2,), {}, (1, 2, 4, 4, 4)),
    ("AdaptiveAvgPool1d", (3,), {}, (2, 3, 7)),
    ("AdaptiveAvgPool2d", ((1, 1),), {}, (2, 3, 5, 6)),
    ("AdaptiveAvgPool3d", (2,), {}, (1, 2, 5, 4, 3)),
    ("AdaptiveMaxPool1d", (3,), {}, (2, 3, 7)),
    ("AdaptiveMaxPool2d", ((2, 3),), {}, (2, 3, 5, 6)),
    ("AdaptiveMaxPool3d", (2,), {}, (1, 2, 5, 4, 3)),
])
def test_pool_layers_match_torch(name, args, kwargs, shape, rng):
    torch = _torch()
    op = name.lower()
    for dim in "123":
        op = op.replace(f"pool{dim}d", f"_pool{dim}d")
    op = op.replace("adaptiveavg", "adaptive_avg").replace("adaptivemax", "adaptive_max")
    _needs(op)
    x = rng.permutation(np.prod(shape)).reshape(shape).astype(np.float32) / 10  # no ties
    compare_with_torch(getattr(nn, name)(*args, **kwargs),
                       getattr(torch.nn, name)(*args, **kwargs), x)


def test_max_unpool_layer_matches_torch(rng):
    torch = _torch()
    _needs("max_pool2d", "max_unpool2d")
    x = rng.permutation(2 * 2 * 4 * 4).reshape(2, 2, 4, 4).astype(np.float32)
    out, idx = nn.MaxPool2d(2, return_indices=True)(ce.tensor(x))
    t_out, t_idx = torch.nn.MaxPool2d(2, return_indices=True)(torch.tensor(x))
    np.testing.assert_array_equal(np.asarray(idx.data if hasattr(idx, "data") else idx),
                                  t_idx.numpy())
    un = nn.MaxUnpool2d(2)(out, idx)
    assert_close(un.data, torch.nn.MaxUnpool2d(2)(t_out, t_idx).numpy())


@pytest.mark.parametrize("name,args", [("ReLU", ()), ("LeakyReLU", (0.2,)), ("ELU", (0.7,)),
                                       ("GELU", ()), ("Sigmoid", ()), ("Tanh", ()),
                                       ("Softmax", (1,)), ("LogSoftmax", (1,))])
def test_activation_layers_match_torch(name, args, rng):
    torch = _torch()
    op = {"ReLU": "relu", "LeakyReLU": "leaky_relu", "ELU": "elu", "GELU": "gelu",
          "Sigmoid": "sigmoid", "Tanh": "tanh", "Softmax": "softmax",
          "LogSoftmax": "log_softmax"}[name]
    _needs(op)
    x = (rng.standard_normal((3, 4, 2)) * 3).astype(np.float32)
    compare_with_torch(getattr(nn, name)(*args), getattr(torch.nn, name)(*args), x)
