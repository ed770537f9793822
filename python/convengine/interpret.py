"""Class activation maps: Grad-CAM (Selvaraju et al. 2017) and Grad-CAM++ (Chattopadhyay et
al. 2018) for any layer of any model, 2D and 3D, and PNG heat-map overlays.

    model.eval()
    cam = GradCAM(model, model.layer4)          # or a name: GradCAM(model, "features.8")
    maps = cam(images)                          # (N, H, W) in [0, 1], the predicted class
    maps = cam(images, target=1)                # or a class index (one, or one per image)
    overlay(images[0, 0], maps[0], "cam.png")   # needs matplotlib (extra "plot")

How: a forward hook on the layer replaces its output A (N, C, *s) by a leaf tensor with the same
values, so one backward pass of the class score leaves dScore/dA in that leaf's .grad without
touching the parameters' gradients. Then

    Grad-CAM:    w_c = mean_s dY/dA_c                     cam = ReLU(sum_c w_c A_c)
    Grad-CAM++:  a_c(s) = g^2 / (2 g^2 + sum_s' A_c(s') g^3)   (g = dY/dA_c(s), the closed form
                 for Y = exp(score)),  w_c = sum_s a_c(s) ReLU(g)   cam = ReLU(sum_c w_c A_c)

and the map is upsampled to the input size ((bi/tri)linear, nn.functional.interpolate) and
min-max normalised per image. For segmentation outputs (N, K, *spatial) the score is the sum of
class K's logits over the image.

Choosing the layer: the map has the layer's resolution, so the last layer at a resolution that
resolves the structures of interest works best. On 32x32 phantoms with lesions of radius 2-4
pixels, a classifier with a 1x1 class-score convolution and global max pooling puts the peak
inside the lesion for all correctly classified positives (tests/test_interpret.py); the
small_cnn (global average pooling) at its 8x8 last block misses the lesion by ~3 pixels
(median) and does better at its 16x16 second block (within ~2 pixels for 90%).
"""

import numbers

import numpy as np

from .autograd import enable_grad, no_grad
from .nn import functional as F
from .nn.modules.module import Module, frozen_eval
from .tensor import Tensor

__all__ = ["GradCAM", "GradCAMPlusPlus", "overlay"]

_EPS = 1e-7


def _as_input(x, op):
    if isinstance(x, Tensor):
        return Tensor(x.data)  # a fresh leaf: no gradient flows into the caller's tensor
    if isinstance(x, np.ndarray):
        if x.dtype.kind != "f":
            raise TypeError(f"{op}: input must be a floating-point array or Tensor, got dtype "
                            f"{x.dtype}")
        return Tensor(x)
    raise TypeError(f"{op}: input must be a Tensor or numpy array, got {type(x).__name__}")


def _targets(target, logits, op):
    """One class index per image: the predicted class (None), one int for all, or a list."""
    n, k = logits.shape[0], logits.shape[1]
    if target is None:
        scores = logits.reshape(n, k, -1).sum(axis=2)
        return scores.argmax(axis=1)
    if isinstance(target, numbers.Integral) and not isinstance(target, bool):
        target = np.full(n, int(target))
    else:
        try:
            target = np.asarray(target)
        except Exception:  # pragma: no cover - exotic objects
            target = None
        if target is None or target.dtype.kind not in "iu" or target.shape != (n,):
            raise TypeError(f"{op}: target must be None, an int or {n} ints (one per image), "
                            f"got {target!r}")
    if np.any((target < 0) | (target >= k)):
        raise ValueError(f"{op}: target must lie in [0, {k}) (the model has {k} outputs), got "
                         f"{target.tolist()}")
    return target.astype(np.int64)


class GradCAM:
    """Grad-CAM for `target_layer` (a submodule of `model` or its dotted name).

    __call__(input, target=None, upsample=True, normalize=True) -> ndarray (N, *spatial):
        input: (N, C, H, W) or (N, C, D, H, W) Tensor/array; target: None (each image's
        predicted class), an int, or one int per image. upsample: resize the map to the
        input's spatial size (else the layer's). normalize: min-max to [0, 1] per image.
    After a call: .activations, .gradients (the layer's A and dY/dA, ndarrays), .logits,
    .targets.
    The model runs in eval mode during the call (its modes are restored afterwards) and
    its parameters' .grad are left untouched. A layer called several times in one forward pass
    (a shared ReLU) is hooked at its last call.
    """

    name = "GradCAM"

    def __init__(self, model, target_layer):
        if not isinstance(model, Module):
            raise TypeError(f"{self.name}: model must be a convengine.nn.Module, got "
                            f"{type(model).__name__}")
        if isinstance(target_layer, str):
            try:
                target_layer = model.get_submodule(target_layer)
            except AttributeError as error:
                raise ValueError(f"{self.name}: target_layer {target_layer!r} is not a "
                                 f"submodule of the model ({error})") from None
        if not isinstance(target_layer, Module):
            raise TypeError(f"{self.name}: target_layer must be a Module or a submodule name, "
                            f"got {type(target_layer).__name__}")
        if not any(m is target_layer for m in model.modules()):
            raise ValueError(f"{self.name}: target_layer ({type(target_layer).__name__}) is "
                             f"not a submodule of the model")
        self.model, self.target_layer = model, target_layer
        self.activations = self.gradients = self.logits = self.targets = None

    # ----- the forward and backward pass ---------------------------------------------------
    def _forward_backward(self, x, target):
        captured = {}

        def hook(module, inputs, output):
            if not isinstance(output, Tensor):
                raise TypeError(f"{self.name}: target_layer must return a Tensor, got "
                                f"{type(output).__name__}")
            leaf = Tensor(output.data, requires_grad=True)
            captured["A"] = leaf
            return leaf

        handle = self.target_layer.register_forward_hook(hook)
        try:
            with frozen_eval(self.model), enable_grad():
                out = self.model(x)
                if "A" not in captured:
                    raise ValueError(f"{self.name}: target_layer was not called in the model's "
                                     f"forward pass")
                if not isinstance(out, Tensor) or out.ndim < 2:
                    raise ValueError(f"{self.name}: the model must return (N, classes[, "
                                     f"*spatial]) scores, got "
                                     f"{getattr(out, 'shape', type(out).__name__)}")
                targets = _targets(target, out.data, self.name)
                # d(sum_n score_n)/d(out): one-hot on each image's target class
                seed = np.zeros_like(out.data)
                seed[np.arange(out.shape[0]), targets] = 1
                A = captured["A"]
                if not out.requires_grad:
                    raise ValueError(f"{self.name}: the model's output does not depend on "
                                     f"target_layer")
                out.backward(seed)
        finally:
            handle.remove()
        grads = A.grad.data if A.grad is not None else np.zeros_like(A.data)
        self.activations, self.gradients = A.data, grads
        self.logits, self.targets = out.data, targets
        return A.data.astype(np.float64), grads.astype(np.float64)

    def _weights(self, A, grads):
        """(N, C) channel weights: the spatial mean of the gradients."""
        return grads.reshape(grads.shape[0], grads.shape[1], -1).mean(axis=2)

    def __call__(self, input, target=None, upsample=True, normalize=True):
        x = _as_input(input, self.name)
        if x.ndim not in (4, 5):
            raise ValueError(f"{self.name}: input must be (N, C, H, W) or (N, C, D, H, W), got "
                             f"shape {tuple(x.shape)}")
        A, grads = self._forward_backward(x, target)
        if A.ndim != x.ndim:
            raise ValueError(f"{self.name}: target_layer's output must be (N, C, *spatial) like "
                             f"the input, got shape {A.shape}; pick a convolutional layer")
        w = self._weights(A, grads)
        # (N, *s) = sum_c (N, C, 1..) * (N, C, *s)
        cam = np.maximum((w.reshape(w.shape + (1,) * (A.ndim - 2)) * A).sum(axis=1), 0)
        cam = cam.astype(np.float32)
        if upsample and cam.shape[1:] != x.shape[2:]:
            mode = "bilinear" if cam.ndim == 3 else "trilinear"
            with no_grad():
                cam = F.interpolate(Tensor(cam[:, None]), size=tuple(x.shape[2:]), mode=mode,
                                    align_corners=False).data[:, 0]
            cam = np.maximum(cam, 0)
        if normalize:
            flat = cam.reshape(cam.shape[0], -1)
            lo, hi = flat.min(axis=1), flat.max(axis=1)
            span = np.where(hi - lo > _EPS, hi - lo, 1.0)
            flat = np.where((hi - lo > _EPS)[:, None], (flat - lo[:, None]) / span[:, None], 0.0)
            cam = flat.reshape(cam.shape).astype(np.float32)
        return cam


class GradCAMPlusPlus(GradCAM):
    """Grad-CAM++: pixel-wise weighted positive gradients (see the module docstring)."""

    name = "GradCAMPlusPlus"

    def _weights(self, A, grads):
        n, c = A.shape[:2]
        g = grads.reshape(n, c, -1)
        g2, g3 = g ** 2, g ** 3
        sum_a = A.reshape(n, c, -1).sum(axis=2, keepdims=True)
        denominator = 2 * g2 + sum_a * g3
        denominator = np.where(denominator != 0, denominator, 1.0)
        alpha = np.where(g != 0, g2 / denominator, 0.0)
        return (alpha * np.maximum(g, 0)).sum(axis=2)


def _as_array(array):
    return np.asarray(array.data if isinstance(array, Tensor) else array, dtype=np.float64)


def overlay(image, cam, path, alpha=0.45, cmap="jet", slice_index=None, title=None):
    """Saves `image` in grey with `cam` as a coloured heat map on top to the PNG `path`.

    image: (H, W), (1, H, W) or (3, H, W) (channels first) or a volume (D, H, W) / (1, D, H, W);
    cam: (H, W) or (D, H, W), the same spatial size. For volumes the axial slice slice_index
    is drawn (default: the slice holding the map's peak). Needs matplotlib (the "plot" extra).
    Returns path.
    """
    try:
        import matplotlib
        matplotlib.use("Agg", force=False)
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("overlay needs matplotlib: pip install convengine[plot] (or pip "
                          "install matplotlib)") from error
    if not isinstance(path, (str, bytes)) and not hasattr(path, "__fspath__"):
        raise TypeError(f"overlay: path must be a file path, got {type(path).__name__}")
    img = _as_array(image)
    heat = _as_array(cam)
    if heat.ndim not in (2, 3):
        raise ValueError(f"overlay: cam must be (H, W) or (D, H, W), got shape {heat.shape}")
    rgb = False
    if img.ndim == heat.ndim + 1 and img.shape[0] in (1, 3):
        if img.shape[0] == 3 and heat.ndim == 2:
            img, rgb = np.moveaxis(img, 0, -1), True
        else:
            img = img[0]
    spatial = img.shape[:2] if rgb else img.shape
    if spatial != heat.shape:
        raise ValueError(f"overlay: image's spatial shape {spatial} must equal cam's "
                         f"{heat.shape}")
    if heat.ndim == 3:
        if slice_index is None:
            slice_index = int(np.unravel_index(np.argmax(heat), heat.shape)[0])
        if not isinstance(slice_index, numbers.Integral) or not 0 <= slice_index < heat.shape[0]:
            raise ValueError(f"overlay: slice_index must be an int in [0, {heat.shape[0]}), "
                             f"got {slice_index!r}")
        img, heat = img[slice_index], heat[slice_index]
    if not 0 <= alpha <= 1:
        raise ValueError(f"overlay: alpha must lie in [0, 1], got {alpha}")
    lo, hi = float(img.min()), float(img.max())
    img = (img - lo) / (hi - lo) if hi > lo else np.zeros_like(img)
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    try:
        ax.imshow(img, cmap=None if rgb else "gray", interpolation="nearest")
        ax.imshow(heat, cmap=cmap, alpha=alpha, vmin=0, vmax=max(float(heat.max()), _EPS),
                  interpolation="bilinear")
        ax.set_axis_off()
        if title:
            ax.set_title(str(title))
        fig.savefig(path, bbox_inches="tight", pad_inches=0.02)
    finally:
        plt.close(fig)
    return path
