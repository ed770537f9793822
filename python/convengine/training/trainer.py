"""Trainer: epochs of training and validation with metrics, early stopping, best-model
checkpoints, resume, an overfitting warning and a history of every epoch.

    trainer = Trainer(model, nn.CrossEntropyLoss(), optim.AdamW(model.parameters()),
                      scheduler=..., metrics=["accuracy", "roc_auc"],
                      early_stopping_patience=5, checkpoint_dir="runs/exp1")
    history = trainer.fit(train_loader, val_loader, epochs=25)
    trainer.evaluate(test_loader)       # {"loss": ..., "accuracy": ..., "roc_auc": ...}
    history.to_csv("history.csv"); history.plot("curves.png")   # train vs validation

Library code does not print: progress goes to a tqdm bar when progress=True (and tqdm is
installed), notices through `warnings` and the optional `log` callable.
"""

import copy
import csv
import json
import math
import os
import time
import warnings

import numpy as np

from ..autograd import no_grad
from ..creation import manual_seed
from ..optim.lr_scheduler import ReduceLROnPlateau
from ..tensor import Tensor
from . import checkpoint as ckpt
from .metrics import METRICS

__all__ = ["Trainer", "History", "OverfittingWarning"]


class OverfittingWarning(UserWarning):
    """Validation loss has risen for several epochs while training loss kept falling."""


class History:
    """Per-epoch records: {"epoch", "train_loss", "val_loss", "train_<metric>",
    "val_<metric>", "lr", "time"} as lists of equal length."""

    def __init__(self, records=None):
        self.records = {k: list(v) for k, v in (records or {}).items()}

    def append(self, row):
        n = len(self)
        for key in row:
            self.records.setdefault(key, [math.nan] * n)
        for key, values in self.records.items():
            values.append(row.get(key, math.nan))

    def __len__(self):
        return len(self.records.get("epoch", []))

    def __getitem__(self, key):
        return self.records[key]

    def __contains__(self, key):
        return key in self.records

    def keys(self):
        return self.records.keys()

    def best(self, key, mode="min"):
        values = np.asarray(self.records[key], dtype=np.float64)
        index = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
        return self.records["epoch"][index], float(values[index])

    def to_dict(self):
        return {k: list(v) for k, v in self.records.items()}

    def to_json(self, path):
        with open(path, "w") as f:
            json.dump(self.to_dict(), f, indent=2, default=float)
        return path

    def to_csv(self, path):
        keys = list(self.records)
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(keys)
            for i in range(len(self)):
                writer.writerow([self.records[k][i] for k in keys])
        return path

    @classmethod
    def from_json(cls, path):
        with open(path) as f:
            return cls(json.load(f))

    def plot(self, path=None, keys=None):
        """Training vs validation curves, one panel per quantity (needs matplotlib, the
        'plot' extra). Saves to path when given; returns the figure."""
        try:
            import matplotlib

            if path is not None:
                matplotlib.use("Agg", force=False)
            import matplotlib.pyplot as plt
        except ImportError as error:  # pragma: no cover - optional extra
            raise ImportError("History.plot needs matplotlib: pip install "
                              "convengine[plot]") from error
        names = keys or sorted({k[len("train_"):] for k in self.records
                                if k.startswith("train_")}
                               | {k[len("val_"):] for k in self.records if k.startswith("val_")})
        fig, axes = plt.subplots(1, len(names), figsize=(4.5 * len(names), 3.5), squeeze=False)
        epochs = self.records["epoch"]
        for ax, name in zip(axes[0], names):
            for split in ("train", "val"):
                key = f"{split}_{name}"
                if key in self.records:
                    ax.plot(epochs, self.records[key], marker="o", ms=3,
                            label="training" if split == "train" else "validation")
            ax.set_title(name)
            ax.set_xlabel("epoch")
            ax.legend()
        fig.tight_layout()
        if path is not None:
            fig.savefig(path, dpi=120)
        return fig


def _batch_size(x):
    if isinstance(x, Tensor):
        return x.shape[0] if x.ndim else 1
    if isinstance(x, (list, tuple)) and x:
        return _batch_size(x[0])
    return len(x)


def _to_numpy(x):
    return x.data if isinstance(x, Tensor) else np.asarray(x)


class Trainer:
    """Fits `model` with `loss_fn` and `optimizer`.

    scheduler: stepped once per epoch (scheduler_step="epoch", ReduceLROnPlateau gets the
        monitored value) or after every batch ("batch", e.g. OneCycleLR).
    metrics: names from training.metrics.METRICS ("accuracy", "balanced_accuracy",
        "roc_auc", "sensitivity", "specificity", "dice", "psnr", "ssim") or callables
        f(outputs, targets) -> float, computed on the whole epoch's outputs.
    monitor / mode: the quantity early stopping and best-model selection watch ("val_loss"
        and "min" by default; e.g. "val_roc_auc" with "max").
    early_stopping_patience: stop after this many epochs without improvement (None: never);
        restore_best_weights puts the best epoch's weights back at the end.
    checkpoint_dir: writes best.npz (best monitored value) and last.npz (every epoch) there;
        fit(resume_from=...) continues from such a checkpoint.
    overfit_patience: warn (OverfittingWarning) when validation loss has risen for this many
        consecutive epochs while the training loss fell.
    seed: calls convengine.manual_seed(seed) at the start of fit for a reproducible run.
    adversary: adversarial training; a callable adversary(model, x, y) -> x_adv, e.g.
        convengine.adversarial.Attack("pgd", eps=0.03, steps=5), applied to every training
        batch. adversarial_weight: the loss is (1 - w) loss(clean) + w loss(adversarial)
        (1.0, the default: adversarial examples only, as in Madry et al.). Validation and
        evaluation stay on clean inputs; training metrics are on the adversarial outputs.
    """

    def __init__(self, model, loss_fn, optimizer, scheduler=None, metrics=(),
                 scheduler_step="epoch", monitor="val_loss", mode="min",
                 early_stopping_patience=None, min_delta=0.0, restore_best_weights=True,
                 checkpoint_dir=None, overfit_patience=3, progress=False, log=None, seed=None,
                 train_metrics=True, adversary=None, adversarial_weight=1.0):
        if scheduler_step not in ("epoch", "batch"):
            raise ValueError(f"Trainer: scheduler_step must be 'epoch' or 'batch', got "
                             f"{scheduler_step!r}")
        if mode not in ("min", "max"):
            raise ValueError(f"Trainer: mode must be 'min' or 'max', got {mode!r}")
        if early_stopping_patience is not None and early_stopping_patience < 0:
            raise ValueError(f"Trainer: early_stopping_patience must be >= 0, got "
                             f"{early_stopping_patience}")
        if adversary is not None and not callable(adversary):
            raise TypeError(f"Trainer: adversary must be a callable (model, x, y) -> x_adv, got "
                            f"{type(adversary).__name__}")
        if not 0.0 <= adversarial_weight <= 1.0:
            raise ValueError(f"Trainer: adversarial_weight must lie in [0, 1], got "
                             f"{adversarial_weight}")
        self.adversary, self.adversarial_weight = adversary, float(adversarial_weight)
        self.metrics = {}
        for m in metrics:
            if callable(m):
                self.metrics[getattr(m, "__name__", "metric")] = m
            elif m in METRICS:
                self.metrics[m] = METRICS[m]
            else:
                raise ValueError(f"Trainer: unknown metric {m!r}; known: {sorted(METRICS)}")
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.scheduler, self.scheduler_step = scheduler, scheduler_step
        self.monitor, self.mode, self.min_delta = monitor, mode, float(min_delta)
        self.early_stopping_patience = early_stopping_patience
        self.restore_best_weights = restore_best_weights
        self.checkpoint_dir = checkpoint_dir
        self.overfit_patience = overfit_patience
        self.progress, self.log, self.seed = progress, log, seed
        self.train_metrics = train_metrics
        self.history = History()
        self.epoch = 0
        self.best_value = None
        self.best_epoch = None
        self.best_state = None
        self.stopped_early = False
        self.overfitting_epochs = []

    # ----- one pass ------------------------------------------------------------------------
    def _bar(self, loader, desc):
        if not self.progress:
            return loader, None
        try:
            from tqdm.auto import tqdm
        except ImportError:
            return loader, None
        bar = tqdm(loader, desc=desc, leave=False)
        return bar, bar

    def _run(self, loader, train, desc, keep_outputs):
        model = self.model
        model.train(train)
        total, count = 0.0, 0
        outputs, targets = [], []
        iterator, bar = self._bar(loader, desc)
        for batch in iterator:
            if not isinstance(batch, (tuple, list)) or len(batch) < 2:
                raise ValueError("Trainer: each batch must be an (inputs, targets) pair")
            x, y = batch[0], batch[1]
            if train:
                # adversarial training: the attack leaves the model's modes and grads as found
                inputs = x if self.adversary is None else self.adversary(model, x, y)
                self.optimizer.zero_grad()
                out = model(inputs)
                loss = self.loss_fn(out, y)
                if self.adversary is not None and self.adversarial_weight < 1.0:
                    loss = self.adversarial_weight * loss + \
                        (1.0 - self.adversarial_weight) * self.loss_fn(model(x), y)
                value = float(loss.item())
                if not math.isfinite(value):
                    raise FloatingPointError(f"Trainer: the loss became {value} in epoch "
                                             f"{self.epoch + 1}; lower the learning rate")
                loss.backward()
                self.optimizer.step()
                if self.scheduler is not None and self.scheduler_step == "batch":
                    self.scheduler.step()
            else:
                with no_grad():
                    out = model(x)
                    value = float(self.loss_fn(out, y).item())
            n = _batch_size(x)
            total += value * n
            count += n
            if keep_outputs:
                outputs.append(_to_numpy(out).copy())
                targets.append(_to_numpy(y).copy())
            if bar is not None:
                bar.set_postfix(loss=f"{total / count:.4f}")
        if bar is not None:
            bar.close()
        if count == 0:
            raise ValueError(f"Trainer: the {desc} loader yielded no batches")
        result = {"loss": total / count}
        if keep_outputs and self.metrics:
            out_all, tgt_all = np.concatenate(outputs), np.concatenate(targets)
            for name, fn in self.metrics.items():
                result[name] = float(fn(out_all, tgt_all))
        return result

    def evaluate(self, loader):
        """{"loss": mean loss, <metric>: value, ...} over the loader, in eval mode."""
        return self._run(loader, train=False, desc="eval", keep_outputs=True)

    def predict(self, loader):
        """The model's outputs over the loader (eval mode, no gradients), concatenated."""
        self.model.eval()
        outs = []
        with no_grad():
            for batch in loader:
                x = batch[0] if isinstance(batch, (tuple, list)) else batch
                outs.append(_to_numpy(self.model(x)).copy())
        return np.concatenate(outs)

    # ----- checkpoints ---------------------------------------------------------------------
    def state(self):
        return {
            "model": {k: v.data.copy() for k, v in self.model.state_dict().items()},
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "epoch": self.epoch,
            "history": self.history.to_dict(),
            "best_value": self.best_value,
            "best_epoch": self.best_epoch,
        }

    def save_checkpoint(self, path):
        """Model, optimizer, scheduler, epoch and history, atomically, as a verified .npz."""
        return ckpt.save_checkpoint(path, self.state())

    def load_checkpoint(self, path):
        """Restores what save_checkpoint wrote; a checkpoint of another model raises
        StateDictError naming the mismatched keys."""
        state = ckpt.load_checkpoint(path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state.get("scheduler") is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.epoch = int(state["epoch"])
        self.history = History(state["history"])
        self.best_value, self.best_epoch = state.get("best_value"), state.get("best_epoch")
        return state

    # ----- fit -----------------------------------------------------------------------------
    def _improved(self, value):
        if value is None or not math.isfinite(value):
            return False
        if self.best_value is None:
            return True
        if self.mode == "min":
            return value < self.best_value - self.min_delta
        return value > self.best_value + self.min_delta

    def _check_overfitting(self):
        h = self.history
        k = self.overfit_patience
        if not k or "val_loss" not in h or len(h) < k + 1:
            return
        val, train = h["val_loss"][-(k + 1):], h["train_loss"][-(k + 1):]
        rising = all(b > a for a, b in zip(val, val[1:]))
        falling = all(b < a for a, b in zip(train, train[1:]))
        if rising and falling:
            epoch = h["epoch"][-1]
            self.overfitting_epochs.append(epoch)
            message = (f"possible overfitting at epoch {epoch}: validation loss rose for {k} "
                       f"epochs ({val[0]:.4f} -> {val[-1]:.4f}) while training loss fell "
                       f"({train[0]:.4f} -> {train[-1]:.4f}); consider early stopping, more "
                       f"augmentation, dropout or weight decay")
            warnings.warn(message, OverfittingWarning, stacklevel=3)
            if self.log:
                self.log(message)

    def fit(self, train_loader, val_loader=None, epochs=10, resume_from=None):
        """Trains for `epochs` epochs in total (counting those of a resumed checkpoint);
        returns the History."""
        if not isinstance(epochs, int) or epochs < 1:
            raise ValueError(f"Trainer.fit: epochs must be a positive int, got {epochs!r}")
        if self.seed is not None:
            manual_seed(self.seed)
        if resume_from is not None:
            self.load_checkpoint(resume_from)
        monitor = self.monitor
        if val_loader is None and monitor.startswith("val_"):
            monitor = "train_" + monitor[len("val_"):]
        if self.checkpoint_dir:
            os.makedirs(self.checkpoint_dir, exist_ok=True)
        epochs_without_improvement = 0
        self.stopped_early = False
        while self.epoch < epochs:
            start = time.perf_counter()
            lr = self.optimizer.param_groups[0]["lr"]
            train = self._run(train_loader, True, f"epoch {self.epoch + 1}",
                              keep_outputs=self.train_metrics and bool(self.metrics))
            row = {"epoch": self.epoch + 1, "lr": lr}
            row.update({f"train_{k}": v for k, v in train.items()})
            if val_loader is not None:
                val = self._run(val_loader, False, "validation", keep_outputs=True)
                row.update({f"val_{k}": v for k, v in val.items()})
            row["time"] = time.perf_counter() - start
            self.epoch += 1
            if monitor not in row:
                raise ValueError(f"Trainer: monitored quantity {monitor!r} is not among "
                                 f"{sorted(row)}")
            value = row[monitor]
            if self.scheduler is not None and self.scheduler_step == "epoch":
                if isinstance(self.scheduler, ReduceLROnPlateau):
                    self.scheduler.step(value)
                else:
                    self.scheduler.step()
            self.history.append(row)
            if self.log:
                self.log("  ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                                   for k, v in row.items()))
            if self._improved(value):
                self.best_value, self.best_epoch = value, self.epoch
                epochs_without_improvement = 0
                if self.restore_best_weights:
                    self.best_state = copy.deepcopy(
                        {k: v.data.copy() for k, v in self.model.state_dict().items()})
                if self.checkpoint_dir:
                    self.save_checkpoint(os.path.join(self.checkpoint_dir, "best.npz"))
            else:
                epochs_without_improvement += 1
            if self.checkpoint_dir:
                self.save_checkpoint(os.path.join(self.checkpoint_dir, "last.npz"))
                self.history.to_json(os.path.join(self.checkpoint_dir, "history.json"))
                self.history.to_csv(os.path.join(self.checkpoint_dir, "history.csv"))
            if val_loader is not None:
                self._check_overfitting()
            if (self.early_stopping_patience is not None
                    and epochs_without_improvement >= self.early_stopping_patience):
                self.stopped_early = True
                if self.log:
                    self.log(f"early stopping after epoch {self.epoch}: {monitor} has not "
                             f"improved for {epochs_without_improvement} epochs (best "
                             f"{self.best_value:.4g} at epoch {self.best_epoch})")
                break
        if self.restore_best_weights and self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        return self.history
