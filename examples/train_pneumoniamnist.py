"""Train a small CNN on PneumoniaMNIST (chest X-rays, normal vs pneumonia) with convengine.

    python examples/train_pneumoniamnist.py --data ../shared/data/pneumoniamnist_balanced.npz

The recipe: three conv blocks (conv 3x3 + batch norm + ReLU + max pool), global average
pooling, dropout, a linear head; AdamW with a cosine learning-rate schedule, batch 64, light
augmentation (flips, small rotations), early stopping on the validation ROC AUC with the best
weights restored. Prints the test accuracy, balanced accuracy, ROC AUC, sensitivity and
specificity, and the wall time.

With --out DIR it also writes DIR/metrics.json (the same numbers, plus the confusion matrix
and the ROC curve's points), DIR/confusion_matrix.png, DIR/roc_curve.png and
DIR/training_curves.png (figures need matplotlib), besides the checkpoints and history.
--quick trains one epoch on 256 images (a smoke test, seconds).
"""

import argparse
import json
import os
import sys
import time

import numpy as np

import convengine as ce
from convengine import data, nn, optim
from convengine.data import transforms as T
from convengine.models import small_cnn
from convengine.training import Trainer
from convengine.training import metrics as M

from _common import pyplot, roc_curve, save, write_metrics


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    parser.add_argument("--data", required=True, help="path to a MedMNIST .npz")
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--no-augment", action="store_true")
    parser.add_argument("--out", default=None,
                        help="directory for checkpoints, history, metrics.json and figures")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 1 epoch on 256 training images")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 1

    ce.set_num_threads(args.threads)
    ce.manual_seed(args.seed)
    train = data.datasets.MedMNIST("train", path=args.data)
    val = data.datasets.MedMNIST("val", path=args.data)
    test = data.datasets.MedMNIST("test", path=args.data)
    if args.quick:
        train = data.Subset(train, np.random.default_rng(args.seed).permutation(len(train))[:256])
    if not args.no_augment:
        train = data.TransformedDataset(train, T.Compose([
            T.RandomFlip(axes=[1], p_axis=0.5),
            T.RandomAffine(degrees=10, translate=0.05, scale=(0.9, 1.1), p=0.5),
        ]))
    train_loader = data.DataLoader(train, batch_size=args.batch_size, shuffle=True,
                                   generator=args.seed)
    val_loader = data.DataLoader(val, batch_size=256)
    test_loader = data.DataLoader(test, batch_size=256)

    model = small_cnn(in_channels=1, num_classes=2, widths=(16, 32, 64), dropout=0.3)
    optimizer = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, scheduler,
                      metrics=["accuracy", "balanced_accuracy", "roc_auc"],
                      monitor="val_roc_auc", mode="max", early_stopping_patience=args.patience,
                      checkpoint_dir=args.out,
                      log=lambda line: print(line, flush=True))
    start = time.perf_counter()
    trainer.fit(train_loader, val_loader, epochs=args.epochs)
    wall = time.perf_counter() - start
    result = trainer._run(test_loader, train=False, desc="test", keep_outputs=True)
    outputs = trainer.predict(test_loader)

    result.update(sensitivity=M.sensitivity(outputs, test.labels),
                  specificity=M.specificity(outputs, test.labels))
    result["train_seconds"] = wall
    result["best_epoch"] = trainer.best_epoch
    print("test: " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in result.items()))
    if args.out:
        with open(os.path.join(args.out, "test_metrics.json"), "w") as f:
            json.dump(result, f, indent=2)
        cm = M.confusion_matrix(outputs, test.labels, num_classes=2)
        fpr, tpr = roc_curve(M.probabilities(outputs)[:, 1], test.labels == 1)
        write_metrics(args.out, dict(result, quick=args.quick, confusion_matrix=cm,
                                     roc_fpr=fpr, roc_tpr=tpr))
        plot_figures(args.out, cm, fpr, tpr, result, trainer.history)
    return 0


def plot_figures(out, cm, fpr, tpr, result, history):
    plt = pyplot()
    if plt is None:
        return
    names = ["normal", "pneumonia"]
    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    im = ax.imshow(cm, cmap="Blues")
    for i in range(2):
        for j in range(2):
            ax.text(j, i, f"{cm[i, j]}\n({cm[i, j] / max(cm[i].sum(), 1):.0%})", ha="center",
                    va="center", color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_xticks([0, 1], names)
    ax.set_yticks([0, 1], names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"PneumoniaMNIST test (n={cm.sum()})\nbalanced acc "
                 f"{result['balanced_accuracy']:.3f}")
    fig.colorbar(im, ax=ax, fraction=0.046)
    save(fig, out, "confusion_matrix.png")

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, lw=2, label=f"CNN (AUC = {result['roc_auc']:.3f})")
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="chance")
    ax.plot(1 - result["specificity"], result["sensitivity"], "o", color="C3",
            label="operating point (argmax)")
    ax.set_xlabel("1 - specificity (false-positive rate)")
    ax.set_ylabel("sensitivity (true-positive rate)")
    ax.set_title("ROC curve, PneumoniaMNIST test")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right")
    ax.grid(alpha=0.3)
    save(fig, out, "roc_curve.png")

    h = history.to_dict()
    if h.get("train_loss"):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(8, 3.2))
        epochs = h["epoch"]
        a1.plot(epochs, h["train_loss"], label="train")
        if "val_loss" in h:
            a1.plot(epochs, h["val_loss"], label="val")
        a1.set_xlabel("epoch")
        a1.set_ylabel("cross-entropy")
        a1.legend()
        if "val_roc_auc" in h:
            a2.plot(epochs, h["val_roc_auc"], color="C2")
            a2.set_xlabel("epoch")
            a2.set_ylabel("validation ROC AUC")
        save(fig, out, "training_curves.png")


if __name__ == "__main__":
    sys.exit(main())
