"""Train a small CNN on PneumoniaMNIST (chest X-rays, normal vs pneumonia) with convengine.

    python examples/train_pneumoniamnist.py --data ../shared/data/pneumoniamnist_balanced.npz

The recipe: three conv blocks (conv 3x3 + batch norm + ReLU + max pool), global average
pooling, dropout, a linear head; AdamW with a cosine learning-rate schedule, batch 64, light
augmentation (flips, small rotations), early stopping on the validation ROC AUC with the best
weights restored. Prints the test accuracy, balanced accuracy, ROC AUC, sensitivity and
specificity, and the wall time.
"""

import argparse
import json
import os
import sys
import time

import convengine as ce
from convengine import data, nn, optim
from convengine.data import transforms as T
from convengine.models import small_cnn
from convengine.training import Trainer


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
    parser.add_argument("--out", default=None, help="directory for checkpoints and history")
    args = parser.parse_args(argv)

    ce.set_num_threads(args.threads)
    ce.manual_seed(args.seed)
    train = data.datasets.MedMNIST("train", path=args.data)
    val = data.datasets.MedMNIST("val", path=args.data)
    test = data.datasets.MedMNIST("test", path=args.data)
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
    from convengine.training import metrics as M

    result.update(sensitivity=M.sensitivity(outputs, test.labels),
                  specificity=M.specificity(outputs, test.labels))
    result["train_seconds"] = wall
    result["best_epoch"] = trainer.best_epoch
    print("test: " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in result.items()))
    if args.out:
        with open(os.path.join(args.out, "test_metrics.json"), "w") as f:
            json.dump(result, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
