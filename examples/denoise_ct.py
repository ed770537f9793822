"""Low-dose CT denoising with a CNN, with convengine: simulate, reconstruct, learn.

    python examples/denoise_ct.py --out runs/ct                 # DnCNN, 64x64, ~minutes
    python examples/denoise_ct.py --model redcnn --out runs/ct  # RED-CNN (model zoo)
    python examples/denoise_ct.py --quick --out /tmp/ct         # smoke test (seconds)

Simulation (examples/ct_radon.py, NumPy; --radon skimage uses scikit-image instead):
random Shepp-Logan-like ellipse phantoms -> parallel-beam projections (90 views over 180
degrees) -> Poisson photon counts at `--photons` per ray (the dose; attenuation
`--mu` per pixel per unit intensity) -> -log -> filtered back-projection (ramp filter).
The "full-dose" reference is the same phantom at `--full-dose-factor` times the photons.
A residual CNN learns low-dose FBP -> full-dose FBP (MSE loss); PSNR and SSIM against the
full-dose FBP are reported for plain low-dose FBP and for the network on held-out phantoms.

Writes DIR/metrics.json, DIR/denoising_examples.png (full dose, low-dose FBP, network,
difference images) and DIR/training_curves.png.
"""

import argparse
import sys

import numpy as np

import convengine as ce
from convengine import data, nn, optim
from convengine.training import Trainer
from convengine.training import metrics as M

from _common import Timer, out_dir, pyplot, save, write_metrics
from ct_radon import ParallelBeam, SkimageBeam, ellipse_phantom, low_dose


def build_model(name, width, depth):
    """DnCNN / RED-CNN from the model zoo when present, else the package's small DnCNN."""
    if name == "redcnn":
        from convengine.models.denoise import redcnn
        return redcnn(1, width=width, kernel_size=5), "RED-CNN"
    try:
        from convengine.models.denoise import dncnn
    except ImportError:
        from convengine.models import dncnn
    return dncnn(1, width=width, depth=depth), "DnCNN"


def simulate(n, size, angles, photons, full_factor, mu, seed, beam):
    """(low-dose FBP, full-dose FBP, phantoms), each (n, size, size) float32."""
    rng = np.random.default_rng(seed)
    phantoms = np.stack([ellipse_phantom(size, rng) for _ in range(n)])
    sino = beam.project(phantoms)
    low = beam.fbp(low_dose(sino, photons, mu, rng))
    full = beam.fbp(low_dose(sino, photons * full_factor, mu, rng))
    return low, full, phantoms


def image_metrics(pred, ref, data_range):
    """Mean PSNR and SSIM over images (N, H, W)."""
    p = [M.psnr(a, b, data_range=data_range) for a, b in zip(pred, ref)]
    s = [M.ssim(a[None, None], b[None, None], data_range=data_range) for a, b in zip(pred, ref)]
    return float(np.mean(p)), float(np.mean(s))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--angles", type=int, default=90)
    parser.add_argument("--photons", type=float, default=2e3,
                        help="low-dose incident photons per ray")
    parser.add_argument("--full-dose-factor", type=float, default=100.0)
    parser.add_argument("--mu", type=float, default=0.08,
                        help="attenuation per pixel of unit intensity (water ~ 1.0)")
    parser.add_argument("--radon", choices=("numpy", "skimage"), default="numpy")
    parser.add_argument("--model", choices=("dncnn", "redcnn"), default="dncnn")
    parser.add_argument("--width", type=int, default=24)
    parser.add_argument("--depth", type=int, default=7)
    parser.add_argument("--n-train", type=int, default=256)
    parser.add_argument("--n-test", type=int, default=40)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="smoke test: tiny data, 1 epoch")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.angles, args.n_train, args.n_test, args.epochs = 32, 45, 16, 4, 1
        args.width, args.depth = 8, 3
    out = out_dir(args.out)
    ce.set_num_threads(args.threads)
    ce.manual_seed(args.seed)
    timer = Timer()

    beam = (SkimageBeam if args.radon == "skimage" else ParallelBeam)(args.size, args.angles)
    sim = dict(size=args.size, angles=args.angles, photons=args.photons,
               full_factor=args.full_dose_factor, mu=args.mu, beam=beam)
    lo_tr, fu_tr, _ = simulate(args.n_train, seed=1000 + args.seed, **sim)
    lo_va, fu_va, _ = simulate(max(args.n_test // 2, 4), seed=2000, **sim)
    lo_te, fu_te, ph_te = simulate(args.n_test, seed=3000, **sim)
    sim_seconds = timer()
    print(f"simulated {args.n_train}/{len(lo_va)}/{args.n_test} phantoms in {sim_seconds:.1f} s",
          flush=True)

    model, model_name = build_model(args.model, args.width, args.depth)
    n_params = sum(int(np.prod(p.shape)) for p in model.parameters())
    optimizer = optim.Adam(model.parameters(), lr=args.lr)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    trainer = Trainer(model, nn.MSELoss(), optimizer, scheduler, train_metrics=False,
                      log=lambda line: print(line, flush=True))

    def loader(lo, fu, shuffle=False):
        return data.DataLoader(data.TensorDataset(lo[:, None], fu[:, None]),
                               batch_size=args.batch_size, shuffle=shuffle,
                               generator=args.seed)

    start = timer()
    trainer.fit(loader(lo_tr, fu_tr, True), loader(lo_va, fu_va), epochs=args.epochs)
    train_seconds = timer() - start

    net = trainer.predict(loader(lo_te, fu_te))[:, 0] * beam.circle  # same support as FBP
    data_range = float(fu_te.max() - fu_te.min())
    fbp_psnr, fbp_ssim = image_metrics(lo_te, fu_te, data_range)
    net_psnr, net_ssim = image_metrics(net, fu_te, data_range)
    metrics = {
        "model": model_name, "parameters": n_params, "radon": args.radon, "size": args.size,
        "angles": args.angles, "photons_low": args.photons,
        "photons_full": args.photons * args.full_dose_factor, "n_train": args.n_train,
        "n_test": args.n_test, "epochs": args.epochs, "best_epoch": trainer.best_epoch,
        "data_range": data_range, "quick": args.quick,
        "psnr_fbp": fbp_psnr, "psnr_net": net_psnr, "psnr_gain_db": net_psnr - fbp_psnr,
        "ssim_fbp": fbp_ssim, "ssim_net": net_ssim,
        "simulation_seconds": sim_seconds, "train_seconds": train_seconds,
        "wall_seconds": timer(),
    }
    print("test: " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in metrics.items()), flush=True)
    write_metrics(out, metrics)
    plot(out, fu_te, lo_te, net, data_range, trainer.history.to_dict(), metrics)
    return 0


def plot(out, full, low, net, data_range, history, metrics):
    plt = pyplot()
    if plt is None:
        return
    rows = min(3, len(full))
    fig, axes = plt.subplots(rows, 5, figsize=(12.5, 2.7 * rows), squeeze=False)
    vmin, vmax = 0.0, float(np.percentile(full, 99.5))
    dmax = float(np.percentile(np.abs(low - full), 99))
    for r in range(rows):
        p_low = M.psnr(low[r], full[r], data_range=data_range)
        p_net = M.psnr(net[r], full[r], data_range=data_range)
        panels = [(full[r], "full-dose FBP", "gray", vmin, vmax),
                  (low[r], f"low-dose FBP\n{p_low:.1f} dB", "gray", vmin, vmax),
                  (net[r], f"{metrics['model']}\n{p_net:.1f} dB", "gray", vmin, vmax),
                  (low[r] - full[r], "low-dose FBP - full", "RdBu_r", -dmax, dmax),
                  (net[r] - full[r], f"{metrics['model']} - full", "RdBu_r", -dmax, dmax)]
        for c, (img, title, cmap, lo, hi) in enumerate(panels):
            ax = axes[r, c]
            im = ax.imshow(img, cmap=cmap, vmin=lo, vmax=hi)
            ax.set_title(title, fontsize=9)
            ax.set_axis_off()
        if r == 0:
            fig.colorbar(im, ax=axes[:, 3:].ravel().tolist(), fraction=0.02)
    fig.suptitle(f"held-out phantoms, {metrics['photons_low']:.0f} photons/ray: PSNR "
                 f"{metrics['psnr_fbp']:.2f} -> {metrics['psnr_net']:.2f} dB, SSIM "
                 f"{metrics['ssim_fbp']:.3f} -> {metrics['ssim_net']:.3f}", fontsize=10)
    save(fig, out, "denoising_examples.png")

    if history.get("train_loss"):
        fig, ax = plt.subplots(figsize=(4.5, 3.2))
        ax.semilogy(history["epoch"], history["train_loss"], label="train")
        ax.semilogy(history["epoch"], history["val_loss"], label="val")
        ax.set_xlabel("epoch")
        ax.set_ylabel("MSE")
        ax.legend()
        save(fig, out, "training_curves.png")


if __name__ == "__main__":
    sys.exit(main())
