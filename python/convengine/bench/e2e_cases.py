"""End-to-end cases: one training step (forward, loss, backward, SGD step) and one inference
step of whole models, convengine against the same model in torch with the same weights."""

import numpy as np

from . import models
from .cases import Case, torch_or_none

# name -> (builder, input shape, loss, quick?). Losses: "classes:<n>" is cross-entropy over n
# classes (per pixel when the output is an image), "mse" regresses onto a random target.
E2E = {
    "mnist_cnn_b64": (models.mnist_cnn, (64, 1, 28, 28), "classes:10", True),
    "resnet18_b8_224": (models.resnet18, (8, 3, 224, 224), "classes:1000", False),
    "unet2d_4x1x256x256": (models.unet2d, (4, 1, 256, 256), "classes:2", False),
    "conv3d_block_ct": (models.conv3d_block, (2, 16, 32, 64, 64), "mse", False),
}


def _target(loss, output_shape, rng):
    if loss == "mse":
        return rng.standard_normal(output_shape, dtype=np.float32)
    classes = int(loss.split(":")[1])
    # class indices: (N,) for logits (N, C), (N, H, W) for (N, C, H, W)
    return rng.integers(0, classes, (output_shape[0],) + tuple(output_shape[2:]), dtype=np.int64)


def _loss(fw, loss, out, target):
    F = fw.nn.functional
    return F.mse_loss(out, target) if loss == "mse" else F.cross_entropy(out, target)


def _step(fw, model, x, target, loss, training, to_numpy):
    """A zero-argument callable running one step of `model` in framework `fw`."""
    if not training:
        model.eval()

        def infer():
            with fw.no_grad():
                return to_numpy(model(x))

        return infer
    model.train()
    optimizer = fw.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)

    def train_step():
        optimizer.zero_grad()
        value = _loss(fw, loss, model(x), target)
        value.backward()
        optimizer.step()
        return np.asarray(value.item(), dtype=np.float32)

    return train_step


def _e2e_case(name, builder, input_shape, loss, training, quick):
    def setup(threads):
        import convengine as ce

        rng = np.random.default_rng(0)
        x = rng.standard_normal(input_shape, dtype=np.float32)
        model = builder(ce)
        with ce.no_grad():
            output_shape = model(ce.tensor(x[:1])).shape
        target = _target(loss, (input_shape[0],) + tuple(output_shape[1:]), rng)
        impls = {"convengine": _step(ce, model, ce.tensor(x), ce.tensor(target), loss, training,
                                     lambda t: t.numpy())}
        torch = torch_or_none()
        if torch is not None:
            state = {k: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()}
            layout = torch.channels_last if len(input_shape) == 4 else torch.channels_last_3d
            for label, memory_format in (("torch", torch.contiguous_format),
                                         ("torch_cl", layout)):
                twin = builder(torch)
                twin.load_state_dict(state)
                twin = twin.to(memory_format=memory_format)
                tx = torch.from_numpy(x).contiguous(memory_format=memory_format)
                impls[label] = _step(torch, twin, tx, torch.from_numpy(target), loss, training,
                                     lambda t: t.contiguous().numpy())
        return impls

    step = "train_step" if training else "inference"
    return Case(f"e2e/{name}/{step}", "e2e", 0.0, setup, quick=quick)


def e2e_cases():
    return [_e2e_case(name, builder, shape, loss, training, quick)
            for name, (builder, shape, loss, quick) in E2E.items()
            for training in (True, False)]
