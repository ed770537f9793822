"""Adversarial examples against a chest X-ray classifier, with convengine: how little noise
flips the diagnosis?

    python examples/adversarial_pneumonia.py --data ../shared/data/pneumoniamnist_balanced.npz \\
        --out runs/adversarial
    python examples/adversarial_pneumonia.py --data ... --quick --out /tmp/adv   # smoke test

Trains the small CNN of train_pneumoniamnist.py for a few epochs (best validation
loss kept), then attacks test images
with FGSM and PGD (L-inf, 10 steps, random start), both clipped to the valid [0, 1] range
(convengine.adversarial), at perturbation budgets eps = 0 .. 16/255 grey levels.

Writes DIR/metrics.json (accuracy against eps for each attack) and DIR/accuracy_vs_eps.png,
DIR/adversarial_examples.png (clean image, perturbation, adversarial image with the
model's pneumonia probability).
"""

import argparse
import sys

import numpy as np

import convengine as ce
from convengine import data, nn, optim
from convengine.adversarial import accuracy_vs_epsilon, pgd
from convengine.data.datasets import MedMNIST
from convengine.models import small_cnn
from convengine.tensor import Tensor
from convengine.training import Trainer
from convengine.training import metrics as M

from _common import Timer, out_dir, pyplot, save, write_metrics


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--n-attack", type=int, default=234,
                        help="test images attacked (evenly spaced over the split)")
    parser.add_argument("--pgd-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    epsilons = [0, 1 / 255, 2 / 255, 4 / 255, 8 / 255, 16 / 255]
    train = MedMNIST("train", path=args.data)
    val = MedMNIST("val", path=args.data)
    test = MedMNIST("test", path=args.data)
    if args.quick:
        args.epochs, args.n_attack, args.pgd_steps = 1, 16, 2
        train = data.Subset(train, np.arange(0, len(train), 10))
        epsilons = [0, 4 / 255, 16 / 255]
    out = out_dir(args.out)
    ce.set_num_threads(args.threads)
    ce.manual_seed(args.seed)
    timer = Timer()

    model = small_cnn(1, 2, widths=(16, 32, 64), dropout=0.3)
    optimizer = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer,
                      optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs),
                      monitor="val_loss", mode="min", train_metrics=False,
                      log=lambda line: print(line, flush=True))
    trainer.fit(data.DataLoader(train, batch_size=64, shuffle=True, generator=args.seed),
                data.DataLoader(val, batch_size=256), epochs=args.epochs)
    train_seconds = timer()
    model.eval()

    idx = np.linspace(0, len(test) - 1, min(args.n_attack, len(test))).round().astype(int)
    x = np.stack([test[i][0] for i in idx]).astype(np.float32)
    y = test.labels[idx]
    curves = {}
    for name, kwargs in (("fgsm", {}), ("pgd_linf", {"steps": args.pgd_steps, "seed": 0})):
        curves[name] = accuracy_vs_epsilon(model, x, y, epsilons, attack=name.split("_")[0],
                                           clip=(0.0, 1.0), **kwargs)["accuracy"]
        print(name, " ".join(f"{e * 255:.0f}/255:{a:.3f}" for e, a in zip(epsilons,
                                                                           curves[name])),
              flush=True)
    with ce.no_grad():
        clean_logits = model(Tensor(x)).data
    eps_show = 4 / 255
    x_adv = pgd(model, x, y, eps=eps_show, steps=args.pgd_steps, clip=(0.0, 1.0), seed=0)
    with ce.no_grad():
        adv_logits = model(Tensor(x_adv)).data
    metrics = {"epsilons": epsilons, "epsilons_255": [e * 255 for e in epsilons],
               "accuracy_fgsm": curves["fgsm"], "accuracy_pgd_linf": curves["pgd_linf"],
               "clean_accuracy": curves["fgsm"][0],
               "clean_roc_auc": M.roc_auc(clean_logits, y), "n_attacked": len(idx),
               "pgd_steps": args.pgd_steps, "train_epochs": args.epochs, "quick": args.quick,
               "train_seconds": train_seconds, "wall_seconds": timer()}
    write_metrics(out, metrics)
    plot(out, x, x_adv, y, clean_logits, adv_logits, eps_show, metrics)
    return 0


def plot(out, x, x_adv, y, clean_logits, adv_logits, eps_show, metrics):
    plt = pyplot()
    if plt is None:
        return
    fig, ax = plt.subplots(figsize=(4.6, 3.5))
    ax.plot(metrics["epsilons_255"], metrics["accuracy_fgsm"], "o-", label="FGSM")
    ax.plot(metrics["epsilons_255"], metrics["accuracy_pgd_linf"], "s-",
            label=f"PGD L-inf ({metrics['pgd_steps']} steps)")
    ax.axhline(0.5, color="k", ls=":", lw=1, label="chance")
    ax.set_xlabel("perturbation budget eps (grey levels of 255)")
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(f"PneumoniaMNIST CNN under attack (n={metrics['n_attacked']})")
    ax.grid(alpha=0.3)
    ax.legend()
    save(fig, out, "accuracy_vs_eps.png")

    p_clean = M.probabilities(clean_logits)[:, 1]
    p_adv = M.probabilities(adv_logits)[:, 1]
    correct = np.flatnonzero((p_clean > 0.5) == (y == 1))
    flipped = correct[(p_adv[correct] > 0.5) != (y[correct] == 1)]
    picks = list(flipped[:4]) + [i for i in correct if i not in flipped][:max(0, 4 - len(flipped))]
    if not picks:
        return
    fig, axes = plt.subplots(3, len(picks), figsize=(2.3 * len(picks), 7), squeeze=False)
    for j, i in enumerate(picks):
        delta = x_adv[i, 0] - x[i, 0]
        for r, (img, title, kw) in enumerate((
                (x[i, 0], f"clean ({'pneumonia' if y[i] else 'normal'})\n"
                          f"P(pneumonia) = {p_clean[i]:.2f}", dict(cmap="gray", vmin=0, vmax=1)),
                (delta, f"perturbation (+-{eps_show * 255:.0f}/255)",
                 dict(cmap="RdBu_r", vmin=-eps_show, vmax=eps_show)),
                (x_adv[i, 0], f"adversarial\nP(pneumonia) = {p_adv[i]:.2f}",
                 dict(cmap="gray", vmin=0, vmax=1)))):
            ax = axes[r, j]
            ax.imshow(img, **kw)
            ax.set_title(title, fontsize=8)
            ax.set_axis_off()
    save(fig, out, "adversarial_examples.png")


if __name__ == "__main__":
    sys.exit(main())
