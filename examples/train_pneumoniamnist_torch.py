"""The same recipe as train_pneumoniamnist.py in PyTorch, for comparing accuracy and time.

    python examples/train_pneumoniamnist_torch.py --data ../shared/data/pneumoniamnist_balanced.npz

Three conv blocks (conv 3x3 + batch norm + ReLU + max pool), global average pooling, dropout,
a linear head; AdamW, cosine schedule, batch 64, no augmentation, 2 threads. Prints the test
ROC AUC, balanced accuracy and the training wall time.
"""

import argparse
import time

import numpy as np
import torch
import torch.nn as nn


def roc_auc(scores, labels):
    pos, neg = scores[labels == 1], scores[labels == 0]
    return float((pos[:, None] > neg[None]).mean() + 0.5 * (pos[:, None] == neg[None]).mean())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    npz = np.load(args.data)

    def split(name):
        images = torch.tensor(npz[f"{name}_images"][:, None] / 255.0, dtype=torch.float32)
        return images, torch.tensor(npz[f"{name}_labels"][:, 0], dtype=torch.long)

    (x_train, y_train), (x_test, y_test) = split("train"), split("test")

    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                nn.MaxPool2d(2)]

    model = nn.Sequential(*block(1, 16), *block(16, 32), *block(32, 64), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Dropout(0.3), nn.Linear(64, 2))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs)
    loss_fn = nn.CrossEntropyLoss()
    start = time.perf_counter()
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(len(x_train))
        for i in range(0, len(x_train), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            loss_fn(model(x_train[idx]), y_train[idx]).backward()
            opt.step()
        sched.step()
    wall = time.perf_counter() - start
    model.eval()
    with torch.no_grad():
        p = torch.softmax(model(x_test), 1)[:, 1].numpy()
    y = y_test.numpy()
    pred = p > 0.5
    balanced = (pred[y == 1].mean() + (~pred[y == 0]).mean()) / 2
    print(f"torch: test roc_auc={roc_auc(p, y):.4f} balanced_accuracy={balanced:.4f} "
          f"train_seconds={wall:.1f}")


if __name__ == "__main__":
    main()
