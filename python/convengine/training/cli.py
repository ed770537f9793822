"""`convengine train`: trains a model on a built-in data set and prints its test metrics.

    convengine train --dataset phantom --task segmentation --epochs 5
    convengine train --dataset pneumoniamnist --data ../shared/data/pneumoniamnist_balanced.npz
    convengine train --dataset mnist --data DIR_WITH_IDX_FILES --epochs 3

Writes history.json / history.csv, best.npz and last.npz (verified checkpoints) and
test_metrics.json into --out.
"""

import json
import os
import sys
import time

__all__ = ["add_parser", "run"]

DATASETS = ("phantom", "pneumoniamnist", "mnist", "fashion-mnist")


def add_parser(commands):
    p = commands.add_parser("train", help="train a model on phantom / MedMNIST / MNIST data",
                            description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", choices=DATASETS, default="phantom")
    p.add_argument("--data", metavar="PATH",
                   help="MedMNIST: the .npz file; MNIST: the directory of IDX files")
    p.add_argument("--download", action="store_true",
                   help="download the data set into the cache when --data is not given")
    p.add_argument("--task", choices=("classification", "segmentation", "denoising"),
                   default="classification", help="phantom only")
    p.add_argument("--dims", type=int, choices=(2, 3), default=2, help="phantom only")
    p.add_argument("--model", choices=("small_cnn", "small_unet", "dncnn"), default=None,
                   help="default: small_cnn / small_unet / dncnn by task")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--patience", type=int, default=None, help="early-stopping patience")
    p.add_argument("--augment", action="store_true", help="random flips and affine warps")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None, help="output directory (default runs/<dataset>)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--quiet", action="store_true", help="no per-epoch lines")
    return p


def _splits(args):
    from .. import data
    from ..data import datasets

    if args.dataset == "phantom":
        size = 32 if args.dims == 2 else 16
        n_train = 384 if args.dims == 2 else 128

        def make(n, seed):
            return datasets.PhantomDataset(n, size=size, dims=args.dims, task=args.task,
                                           seed=seed)

        return make(n_train, args.seed), make(n_train // 4, args.seed + 1), \
            make(n_train // 4, args.seed + 2), 1
    if args.task != "classification":
        raise ValueError(f"--task {args.task} needs --dataset phantom")
    if args.dataset == "pneumoniamnist":
        kwargs = dict(path=args.data) if args.data else dict(download=args.download)
        sets = [datasets.MedMNIST(s, flag="pneumoniamnist", **kwargs)
                for s in ("train", "val", "test")]
        return sets[0], sets[1], sets[2], 1
    cls = datasets.MNIST if args.dataset == "mnist" else datasets.FashionMNIST
    full = cls(root=args.data, train=True, download=args.download)
    test = cls(root=args.data, train=False, download=args.download)
    train, val = data.stratified_split(full, (0.9, 0.1), generator=args.seed)
    return train, val, test, 1


def run(args):
    import convengine as ce
    from .. import data, nn, optim
    from ..data import transforms as T
    from ..models import MODELS
    from .metrics import METRICS
    from .trainer import Trainer

    if args.threads:
        ce.set_num_threads(args.threads)
    ce.manual_seed(args.seed)
    try:
        train, val, test, channels = _splits(args)
    except (OSError, ValueError) as error:
        print(f"train: {error}", file=sys.stderr)
        return 2
    task = args.task
    if args.augment:
        augment = T.Compose([T.RandomFlip(p_axis=0.5),
                             T.RandomAffine(degrees=10, scale=(0.9, 1.1), p=0.5)])
        train = data.TransformedDataset(train, augment, joint=task == "segmentation")
    model_name = args.model or {"classification": "small_cnn", "segmentation": "small_unet",
                                "denoising": "dncnn"}[task]
    if task == "classification":
        num_classes = 10 if args.dataset in ("mnist", "fashion-mnist") else 2
        model = MODELS[model_name](channels, num_classes, dims=args.dims) \
            if model_name != "dncnn" else None
        loss = nn.CrossEntropyLoss()
        metrics = ["accuracy", "balanced_accuracy", "roc_auc"]
        monitor, mode = "val_roc_auc", "max"
    elif task == "segmentation":
        model = MODELS[model_name](channels, 3, dims=args.dims)
        ce_loss, dice = nn.CrossEntropyLoss(), nn.DiceLoss()

        def loss(out, target):
            return ce_loss(out, target) + dice(out, target)

        metrics, monitor, mode = ["dice"], "val_dice", "max"
    else:
        model = MODELS[model_name](channels, dims=args.dims)
        loss, metrics, monitor, mode = nn.MSELoss(), ["psnr", "ssim"], "val_loss", "min"
    if model is None:
        print(f"train: model {model_name} does not fit task {task}", file=sys.stderr)
        return 2
    out_dir = args.out or os.path.join("runs", args.dataset)
    optimizer = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    scheduler = optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    trainer = Trainer(model, loss, optimizer, scheduler, metrics=metrics, monitor=monitor,
                      mode=mode, early_stopping_patience=args.patience, checkpoint_dir=out_dir,
                      progress=not args.no_progress,
                      log=None if args.quiet else (lambda line: print(line, flush=True)))
    loader = data.DataLoader(train, batch_size=args.batch_size, shuffle=True,
                             generator=args.seed)
    start = time.perf_counter()
    trainer.fit(loader, data.DataLoader(val, batch_size=256), epochs=args.epochs)
    seconds = time.perf_counter() - start
    result = trainer.evaluate(data.DataLoader(test, batch_size=256))
    if task == "classification" and num_classes == 2:
        outputs = trainer.predict(data.DataLoader(test, batch_size=256))
        labels = data.get_labels(test)
        result["sensitivity"] = METRICS["sensitivity"](outputs, labels)
        result["specificity"] = METRICS["specificity"](outputs, labels)
    result.update(train_seconds=seconds, best_epoch=trainer.best_epoch,
                  epochs_run=len(trainer.history))
    print("test: " + "  ".join(f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}"
                              for k, v in result.items()))
    with open(os.path.join(out_dir, "test_metrics.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(f"history, checkpoints and test metrics written to {out_dir}")
    return 0
