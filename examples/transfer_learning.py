"""Transfer learning for small data sets, with convengine: pre-train a CNN on synthetic
phantoms (lesion / no lesion), then learn PneumoniaMNIST from 5%, 10%, 25% and 100% of its
training images three ways, and compare the test ROC AUC:

  scratch:   random initialisation, all layers trained;
  frozen:    the pre-trained convolutional base as a fixed feature extractor (weights and
             batch-norm statistics frozen), only a new linear head trained;
  finetune:  pre-trained weights, new head, all layers trained at a lower learning rate.

    python examples/transfer_learning.py --data ../shared/data/pneumoniamnist_balanced.npz \\
        --out runs/transfer
    python examples/transfer_learning.py --data ... --quick --out /tmp/tl   # smoke test

Each fraction is a class-stratified subset drawn once (the same images for the three
strategies); every run trains for about the same number of image presentations (more epochs
for smaller subsets), keeps the epoch with the best validation AUC, and is tested on the
full test split. Writes DIR/metrics.json (the table), DIR/transfer_auc.png (test AUC
against training-set size) and DIR/pretraining.json.
"""

import argparse
import sys

import numpy as np

import convengine as ce
from convengine import data, nn, optim
from convengine.data.datasets import MedMNIST, PhantomDataset
from convengine.models import small_cnn
from convengine.training import Trainer

from _common import Timer, out_dir, pyplot, save, write_metrics

WIDTHS = (16, 32, 64)
STRATEGIES = ("scratch", "frozen", "finetune")


class FrozenBase(nn.Module):
    """A Sequential CNN whose first `n_frozen` layers stay frozen: no gradients and batch
    norm in evaluation mode (running statistics from pre-training) even while training."""

    def __init__(self, net, n_frozen):
        super().__init__()
        self.net, self.n_frozen = net, n_frozen
        for layer in list(net)[:n_frozen]:
            layer.requires_grad_(False)

    def forward(self, x):
        return self.net(x)

    def train(self, mode=True):
        super().train(mode)
        for layer in list(self.net)[:self.n_frozen]:
            layer.train(False)
        return self


def new_model(pretrained_state=None):
    model = small_cnn(in_channels=1, num_classes=2, widths=WIDTHS, dropout=0.3)
    if pretrained_state is not None:
        model.load_state_dict(pretrained_state)
        model[-1].reset_parameters()  # a new head for the new task
    return model


def fit(model, params, train, val, epochs, lr, batch_size, seed):
    ce.manual_seed(seed)
    optimizer = optim.AdamW(params, lr=lr, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer, scheduler, metrics=["roc_auc"],
                      monitor="val_roc_auc", mode="max", train_metrics=False)
    trainer.fit(data.DataLoader(train, batch_size=batch_size, shuffle=True, generator=seed),
                data.DataLoader(val, batch_size=256), epochs=epochs)
    return trainer


def stratified_subset(labels, fraction, rng):
    idx = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = max(2, int(round(fraction * len(members))))
        idx.append(rng.choice(members, size=min(k, len(members)), replace=False))
    return np.sort(np.concatenate(idx))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True, help="PneumoniaMNIST .npz")
    parser.add_argument("--fractions", type=float, nargs="+", default=[0.05, 0.1, 0.25, 1.0])
    parser.add_argument("--pretrain-images", type=int, default=2000)
    parser.add_argument("--pretrain-epochs", type=int, default=6)
    parser.add_argument("--budget", type=int, default=7500,
                        help="image presentations per run (epochs = budget / subset size, "
                             "between 3 and 40)")
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--finetune-lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny subsets, 1 epoch")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    min_epochs, max_epochs = 3, 40
    if args.quick:
        args.fractions, args.pretrain_images, args.pretrain_epochs = [0.02], 64, 1
        args.budget, min_epochs, max_epochs = 1, 1, 1
    out = out_dir(args.out)
    ce.set_num_threads(args.threads)
    timer = Timer()

    # ----- pre-training on phantoms (28x28, lesion vs none) -------------------------------
    source = PhantomDataset(n=args.pretrain_images, size=28, task="classification",
                            seed=10 + args.seed)
    source_val = PhantomDataset(n=max(args.pretrain_images // 5, 32), size=28,
                                task="classification", seed=20 + args.seed)
    ce.manual_seed(args.seed)
    base = new_model()
    trainer = fit(base, base.parameters(), source, source_val, args.pretrain_epochs, args.lr,
                  args.batch_size, args.seed)
    pre = {"source": "PhantomDataset classification 28x28", "images": args.pretrain_images,
           "epochs": args.pretrain_epochs, "val_roc_auc": trainer.best_value,
           "seconds": timer()}
    print(f"pre-training: val AUC {trainer.best_value:.4f} ({pre['seconds']:.0f} s)", flush=True)
    write_metrics(out, pre, "pretraining.json")
    state = {k: v.copy() if hasattr(v, "copy") else v for k, v in base.state_dict().items()}

    # ----- PneumoniaMNIST at several training-set sizes -----------------------------------
    train = MedMNIST("train", path=args.data)
    val = MedMNIST("val", path=args.data)
    test = MedMNIST("test", path=args.data)
    if args.quick:
        test = data.Subset(test, np.arange(0, len(test), 8))
        val = data.Subset(val, np.arange(0, len(val), 4))
    test_labels = data.get_labels(test)
    test_loader = data.DataLoader(test, batch_size=256)
    n_conv = len(base) - 1  # every layer but the linear head (conv blocks, GAP, flatten, dropout)
    rows = []
    for fraction in args.fractions:
        idx = stratified_subset(train.labels, fraction, np.random.default_rng(args.seed))
        subset = data.Subset(train, idx)
        epochs = int(np.clip(round(args.budget / len(idx)), min_epochs, max_epochs))
        for strategy in STRATEGIES:
            start = timer()
            if strategy == "scratch":
                ce.manual_seed(args.seed + 1)
                model = new_model()
                params, lr = model.parameters(), args.lr
            elif strategy == "frozen":
                model = FrozenBase(new_model(state), n_conv)
                params, lr = [p for p in model.parameters() if p.requires_grad], args.lr
            else:
                model = new_model(state)
                params, lr = model.parameters(), args.finetune_lr
            trainer = fit(model, params, subset, val, epochs, lr, args.batch_size, args.seed)
            result = trainer.evaluate(test_loader)
            row = {"fraction": fraction, "train_images": len(idx), "strategy": strategy,
                   "epochs": epochs, "best_epoch": trainer.best_epoch,
                   "val_roc_auc": trainer.best_value, "test_roc_auc": result["roc_auc"],
                   "test_loss": result["loss"], "seconds": timer() - start}
            rows.append(row)
            print(f"{fraction:>5.0%} ({len(idx):4d} images) {strategy:9s} epochs={epochs:2d} "
                  f"test AUC={row['test_roc_auc']:.4f} ({row['seconds']:.0f} s)", flush=True)
    table = {s: {str(r["fraction"]): r["test_roc_auc"] for r in rows if r["strategy"] == s}
             for s in STRATEGIES}
    metrics = {"pretraining": pre, "runs": rows, "test_auc": table, "n_test": len(test_labels),
               "quick": args.quick, "wall_seconds": timer()}
    write_metrics(out, metrics)
    plot(out, rows)
    return 0


def plot(out, rows):
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(5.2, 3.8))
    labels = {"scratch": "from scratch", "frozen": "frozen base + new head",
              "finetune": "fine-tuned"}
    for s, marker in zip(STRATEGIES, "osD"):
        pts = sorted((r["train_images"], r["test_roc_auc"]) for r in rows if r["strategy"] == s)
        ax.plot(*zip(*pts), marker=marker, label=labels[s])
    sizes = sorted({r["train_images"] for r in rows})
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(n) for n in sizes])
    ax.minorticks_off()
    ax.set_xlabel("PneumoniaMNIST training images (log scale)")
    ax.set_ylabel("test ROC AUC")
    ax.set_title("Transfer from phantom pre-training")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, out, "transfer_auc.png")


if __name__ == "__main__":
    sys.exit(main())
