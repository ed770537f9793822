"""Grad-CAM and Grad-CAM++ on a lesion classifier, with convengine: does the network look at
the lesion?

    python examples/gradcam_phantoms.py --out runs/gradcam
    python examples/gradcam_phantoms.py --quick --out /tmp/gradcam      # smoke test

A small CNN learns "lesion / no lesion" on synthetic phantoms (PhantomDataset, 32x32).
For every correctly classified positive test image, the class-activation map of the last
convolution block (convengine.interpret.GradCAM / GradCAMPlusPlus) is computed and we check
whether its peak falls inside a lesion (the phantom's ground-truth mask; target >= 80%).
Sanity check (Adebayo et al. 2018): the same maps from a model with re-initialised weights
must differ; we report their Spearman rank correlation with the trained model's maps.

Writes DIR/metrics.json and DIR/gradcam.png (image with lesion outline, Grad-CAM,
Grad-CAM++, Grad-CAM of the randomised model).
"""

import argparse
import sys

import numpy as np

import convengine as ce
from convengine import data, nn, optim
from convengine.data.datasets import PhantomDataset
from convengine.interpret import GradCAM, GradCAMPlusPlus
from convengine.training import Trainer

from _common import Timer, out_dir, pyplot, save, write_metrics


def lesion_fcn():
    """A fully convolutional lesion classifier: 3x3 convolutions, a 1x1 convolution giving a
    class-score map, and global max pooling. The class score is the strongest local evidence, so
    the gradient (and the Grad-CAM map) concentrates where the lesion is; a CNN ending in global
    average pooling spreads it over the lesion's border instead."""
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 2, 1), nn.AdaptiveMaxPool2d(1), nn.Flatten())


def rank_correlation(a, b):
    """Mean over images of Spearman's rank correlation between maps a[i] and b[i]."""
    out = []
    for x, y in zip(a.reshape(len(a), -1), b.reshape(len(b), -1)):
        rx, ry = np.argsort(np.argsort(x)), np.argsort(np.argsort(y))
        out.append(np.corrcoef(rx, ry)[0, 1] if rx.std() > 0 and ry.std() > 0 else 0.0)
    return float(np.mean(out))


def peak_in_lesion(maps, masks, tolerance=0):
    """Fraction of maps whose peak lies in a lesion (or within `tolerance` pixels of one)."""
    hits = []
    for c, m in zip(maps, masks):
        peak = np.unravel_index(np.argmax(c), c.shape)
        lesion = np.argwhere(m == 2)
        hits.append(len(lesion) > 0 and
                    np.abs(lesion - np.asarray(peak)).max(axis=1).min() <= tolerance)
    return float(np.mean(hits)) if hits else float("nan")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--n-train", type=int, default=1500)
    parser.add_argument("--n-test", type=int, default=300)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--layer", default="6",
                        help="target layer (name in the Sequential; 6 = the last 3x3 "
                             "convolution's ReLU, at 16x16)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.quick:
        args.n_train, args.n_test, args.epochs = 64, 16, 1
    out = out_dir(args.out)
    ce.set_num_threads(args.threads)
    ce.manual_seed(args.seed)
    timer = Timer()
    kw = dict(size=args.size, task="classification", contrast=(0.2, 0.5), noise_std=(0.02, 0.06))
    train = PhantomDataset(n=args.n_train, seed=100 + args.seed, **kw)
    val = PhantomDataset(n=max(args.n_test // 2, 16), seed=200, **kw)
    test = PhantomDataset(n=args.n_test, seed=300, **kw)

    model = lesion_fcn()
    optimizer = optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-4)
    trainer = Trainer(model, nn.CrossEntropyLoss(), optimizer,
                      optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs),
                      metrics=["accuracy", "roc_auc"], monitor="val_loss", mode="min",
                      train_metrics=False, log=lambda line: print(line, flush=True))
    trainer.fit(data.DataLoader(train, batch_size=32, shuffle=True, generator=args.seed),
                data.DataLoader(val, batch_size=128), epochs=args.epochs)
    train_seconds = timer()
    test_result = trainer.evaluate(data.DataLoader(test, batch_size=128))

    images = np.stack([test[i][0] for i in range(len(test))])
    labels = test.labels
    masks = np.stack([test.generate(i)[1] for i in range(len(test))])
    logits = trainer.predict(data.DataLoader(test, batch_size=128))
    chosen = np.flatnonzero((labels == 1) & (logits.argmax(axis=1) == 1))
    model.eval()
    x = images[chosen]
    maps = GradCAM(model, args.layer)(x, target=1) if len(chosen) else np.zeros((0,) + x.shape[2:])
    maps_pp = GradCAMPlusPlus(model, args.layer)(x, target=1) if len(chosen) else maps
    ce.manual_seed(args.seed + 99)
    random_model = lesion_fcn()
    random_model.eval()
    maps_rand = GradCAM(random_model, args.layer)(x, target=1) if len(chosen) else maps
    metrics = {
        "test_accuracy": test_result["accuracy"], "test_roc_auc": test_result["roc_auc"],
        "correct_positives": int(len(chosen)), "layer": args.layer,
        "peak_in_lesion_gradcam": peak_in_lesion(maps, masks[chosen]),
        "peak_in_lesion_gradcampp": peak_in_lesion(maps_pp, masks[chosen]),
        "peak_in_lesion_random_weights": peak_in_lesion(maps_rand, masks[chosen]),
        "peak_within_2px_gradcam": peak_in_lesion(maps, masks[chosen], tolerance=2),
        "peak_within_2px_gradcampp": peak_in_lesion(maps_pp, masks[chosen], tolerance=2),
        "peak_within_2px_random_weights": peak_in_lesion(maps_rand, masks[chosen], tolerance=2),
        "rank_correlation_trained_vs_random": rank_correlation(maps, maps_rand)
        if len(chosen) else float("nan"),
        "lesion_area_fraction": float((masks[chosen] == 2).mean()) if len(chosen) else
        float("nan"),
        "quick": args.quick, "train_seconds": train_seconds, "wall_seconds": timer(),
    }
    print("  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in metrics.items()), flush=True)
    write_metrics(out, metrics)
    plot(out, x, masks[chosen], maps, maps_pp, maps_rand, metrics)
    return 0


def plot(out, x, masks, maps, maps_pp, maps_rand, metrics):
    plt = pyplot()
    if plt is None:
        return
    k = min(5, len(x))
    if k == 0:
        fig, ax = plt.subplots()
        ax.text(0.5, 0.5, "no correctly classified positives", ha="center")
        save(fig, out, "gradcam.png")
        return
    fig, axes = plt.subplots(4, k, figsize=(2.1 * k, 8.6), squeeze=False)
    titles = ["image + lesion", "Grad-CAM", "Grad-CAM++", "Grad-CAM, random weights"]
    for j in range(k):
        for r, heat in enumerate((None, maps[j], maps_pp[j], maps_rand[j])):
            ax = axes[r, j]
            ax.imshow(x[j, 0], cmap="gray")
            if heat is not None:
                ax.imshow(heat, cmap="jet", alpha=0.45, vmin=0, vmax=1)
                py, px = np.unravel_index(np.argmax(heat), heat.shape)
                ax.plot(px, py, "w+", ms=9, mew=2)
            ax.contour(masks[j] == 2, levels=[0.5], colors="lime", linewidths=0.8)
            ax.set_axis_off()
            if j == 0:
                ax.set_title(titles[r], fontsize=8, loc="left")
    fig.suptitle(f"peak inside lesion: Grad-CAM {metrics['peak_in_lesion_gradcam']:.0%}, "
                 f"Grad-CAM++ {metrics['peak_in_lesion_gradcampp']:.0%}, random weights "
                 f"{metrics['peak_in_lesion_random_weights']:.0%}", fontsize=9)
    save(fig, out, "gradcam.png")


if __name__ == "__main__":
    sys.exit(main())
