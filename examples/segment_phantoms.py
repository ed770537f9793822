"""Segment organ and lesions in synthetic phantoms with a U-Net (2D or 3D) trained on soft
Dice + cross-entropy, with convengine.

    python examples/segment_phantoms.py --out runs/seg2d              # 2D, 48x48
    python examples/segment_phantoms.py --dims 3 --out runs/seg3d     # 3D, 32^3 volumes
    python examples/segment_phantoms.py --quick --out /tmp/seg        # smoke test (seconds)

Data: convengine.data.datasets.PhantomDataset(task="segmentation"): an elliptical "organ"
with up to three elliptical "lesions" (bright or dark, random contrast), an intensity ramp
and Gaussian noise; labels 0 = background, 1 = organ, 2 = lesion. Training, validation and
held-out test sets come from different seeds, so no image is shared.

Writes DIR/metrics.json (held-out Dice per class and their mean, the same in the
Trainer's convention, wall time) and DIR/overlays.png (image, ground truth, prediction;
for 3D the central slice of each volume) and DIR/training_curves.png.
"""

import argparse
import sys

import numpy as np

import convengine as ce
from convengine import data, nn, optim
from convengine.data.datasets import PhantomDataset
from convengine.training import Trainer
from convengine.training import metrics as M

from _common import Timer, out_dir, pyplot, save, write_metrics

CLASSES = ("background", "organ", "lesion")


def build_unet(dims, depth, width):
    """The model zoo's U-Net when present, else the small two-level one."""
    try:
        from convengine.models.unet import UNet
        return UNet(1, len(CLASSES), depth=depth, base_width=width, dims=dims), "UNet"
    except ImportError:
        from convengine.models import small_unet
        return small_unet(1, len(CLASSES), width=width, dims=dims), "SmallUNet"


class DiceCELoss(nn.Module):
    """Soft Dice (foreground classes) + cross-entropy, both on logits (N, C, *S)."""

    def __init__(self, dice_weight=1.0, ce_weight=1.0, class_weight=None):
        super().__init__()
        self.dice = nn.DiceLoss(include_background=False)
        self.ce = nn.CrossEntropyLoss(weight=None if class_weight is None else
                                      np.asarray(class_weight, np.float32))
        self.dice_weight, self.ce_weight = dice_weight, ce_weight

    def forward(self, logits, target):
        return self.dice_weight * self.dice(logits, target) + self.ce_weight * self.ce(logits,
                                                                                        target)


def materialise(n, size, dims, seed, contrast=(0.2, 0.5), noise_std=(0.02, 0.08)):
    """(images (n, 1, *S) float32, masks (n, *S) int64) of a phantom segmentation set."""
    ds = PhantomDataset(n=n, size=size, dims=dims, task="segmentation", seed=seed,
                        lesion_probability=0.8, contrast=contrast, noise_std=noise_std)
    pairs = [ds[i] for i in range(n)]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])


def per_class_dice(pred, true):
    """{class: mean Dice over the samples where the class is in the truth or prediction}."""
    out = {}
    axes = tuple(range(1, pred.ndim))
    for k in range(1, len(CLASSES)):
        p, t = pred == k, true == k
        inter = (p & t).sum(axis=axes)
        denom = p.sum(axis=axes) + t.sum(axis=axes)
        present = denom > 0
        out[CLASSES[k]] = float(np.mean(2 * inter[present] / denom[present])) if present.any() \
            else float("nan")
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dims", type=int, default=2, choices=(2, 3))
    parser.add_argument("--size", type=int, default=None, help="image side (48 2D, 32 3D)")
    parser.add_argument("--n-train", type=int, default=None)
    parser.add_argument("--n-test", type=int, default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--width", type=int, default=8, help="U-Net base width")
    parser.add_argument("--depth", type=int, default=3, help="U-Net depth (poolings)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--lesion-weight", type=float, default=None,
                        help="cross-entropy weight of the lesion class (default 1 in 2D, 5 in "
                             "3D, where lesions are a far smaller share of the voxels)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny data, 1 epoch")
    parser.add_argument("--out", required=True, help="directory for metrics and figures")
    args = parser.parse_args(argv)
    three = args.dims == 3
    defaults = dict(size=32 if three else 48, n_train=160 if three else 400,
                    n_test=32 if three else 100, epochs=20 if three else 12)
    if args.quick:
        defaults = dict(size=16 if three else 32, n_train=16, n_test=8, epochs=1)
        args.width, args.depth = 4, 2
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    out = out_dir(args.out)
    ce.set_num_threads(args.threads)
    ce.manual_seed(args.seed)
    timer = Timer()

    x_train, y_train = materialise(args.n_train, args.size, args.dims, seed=1000 + args.seed)
    x_val, y_val = materialise(max(args.n_test // 2, 4), args.size, args.dims, seed=2000)
    x_test, y_test = materialise(args.n_test, args.size, args.dims, seed=3000)
    print(f"data: {len(x_train)} train / {len(x_val)} val / {len(x_test)} test "
          f"{'x'.join([str(args.size)] * args.dims)} phantoms ({timer():.1f} s)", flush=True)

    model, model_name = build_unet(args.dims, args.depth, args.width)
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    if args.lesion_weight is None:
        args.lesion_weight = 5.0 if three else 1.0
    loss = DiceCELoss(class_weight=[1.0, 1.0, args.lesion_weight])
    trainer = Trainer(model, loss, optimizer, scheduler, metrics=["dice"],
                      monitor="val_dice", mode="max", train_metrics=False,
                      log=lambda line: print(line, flush=True))
    train_loader = data.DataLoader(data.TensorDataset(x_train, y_train),
                                   batch_size=args.batch_size, shuffle=True,
                                   generator=args.seed)
    val_loader = data.DataLoader(data.TensorDataset(x_val, y_val), batch_size=32)
    test_loader = data.DataLoader(data.TensorDataset(x_test, y_test), batch_size=32)
    start = timer()
    trainer.fit(train_loader, val_loader, epochs=args.epochs)
    train_seconds = timer() - start

    logits = trainer.predict(test_loader)
    pred = logits.argmax(axis=1)
    dice = per_class_dice(pred, y_test)
    lesion_present = (y_test == 2).reshape(len(y_test), -1).any(axis=1)
    metrics = {
        "dims": args.dims, "size": args.size, "model": model_name, "parameters": n_params,
        "n_train": len(x_train), "n_test": len(x_test), "epochs": args.epochs,
        "best_epoch": trainer.best_epoch, "lesion_weight": args.lesion_weight,
        "quick": args.quick,
        "dice_organ": dice["organ"], "dice_lesion": dice["lesion"],
        "dice_mean": float(np.nanmean([dice["organ"], dice["lesion"]])),
        # the Trainer's convention: per sample, absent-in-both classes count as 1
        "dice_trainer": M.dice_score(logits, y_test),
        "lesion_detection_sensitivity": float(np.mean(
            (pred[lesion_present] == 2).reshape(lesion_present.sum(), -1).any(axis=1)))
        if lesion_present.any() else float("nan"),
        "train_seconds": train_seconds, "wall_seconds": timer(),
    }
    print("test: " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in metrics.items()), flush=True)
    write_metrics(out, metrics)
    plot(out, x_test, y_test, pred, args.dims, trainer.history.to_dict(), metrics)
    return 0


def plot(out, images, truth, pred, dims, history, metrics):
    plt = pyplot()
    if plt is None:
        return
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap([(0, 0, 0, 0), (0.1, 0.6, 1.0, 0.35), (1.0, 0.15, 0.1, 0.6)])
    # prefer samples with lesions
    order = np.argsort(-(truth == 2).reshape(len(truth), -1).sum(axis=1), kind="stable")
    picks = order[:min(4, len(order))]
    fig, axes = plt.subplots(len(picks), 3, figsize=(7.5, 2.5 * len(picks)), squeeze=False)
    lo, hi = np.percentile(images, [0.5, 99.5])
    for row, i in enumerate(picks):
        img, t, p = images[i, 0], truth[i], pred[i]
        if dims == 3:  # the axial slice with the most lesion (else the centre)
            z = int(np.argmax((t == 2).sum(axis=(1, 2)))) if (t == 2).any() else t.shape[0] // 2
            img, t, p = img[z], t[z], p[z]
        for col, (title, overlay) in enumerate((("image", None), ("ground truth", t),
                                                ("U-Net prediction", p))):
            ax = axes[row, col]
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi)
            if overlay is not None:
                ax.imshow(overlay, cmap=cmap, vmin=0, vmax=2, interpolation="nearest")
                ax.contour(overlay == 2, levels=[0.5], colors="red", linewidths=0.8)
            ax.set_axis_off()
            if row == 0:
                ax.set_title(title)
    fig.suptitle(f"{dims}D phantom segmentation (blue organ, red lesion): held-out Dice "
                 f"organ {metrics['dice_organ']:.3f}, lesion {metrics['dice_lesion']:.3f}",
                 fontsize=9)
    save(fig, out, "overlays.png")

    if history.get("train_loss"):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
        a1.plot(history["epoch"], history["train_loss"], label="train")
        a1.plot(history["epoch"], history["val_loss"], label="val")
        a1.set_xlabel("epoch")
        a1.set_ylabel("Dice + CE loss")
        a1.legend()
        a2.plot(history["epoch"], history["val_dice"], color="C2")
        a2.set_xlabel("epoch")
        a2.set_ylabel("validation Dice")
        save(fig, out, "training_curves.png")


if __name__ == "__main__":
    sys.exit(main())
