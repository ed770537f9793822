"""Evaluation metrics on NumPy arrays: classification (accuracy, balanced accuracy, ROC AUC,
sensitivity, specificity, confusion matrix), segmentation (Dice) and image quality (PSNR,
SSIM, 2D and 3D)."""

import numpy as np

from ..tensor import Tensor

__all__ = ["confusion_matrix", "accuracy", "balanced_accuracy", "roc_auc", "sensitivity",
           "specificity", "dice_score", "psnr", "ssim", "probabilities", "METRICS"]


def _array(x):
    return np.asarray(x.data if isinstance(x, Tensor) else x)


def probabilities(outputs):
    """Class probabilities from logits: softmax over dim 1 for (N, C, ...) with C > 1,
    sigmoid for (N,) / (N, 1) (returned as (N, 2))."""
    z = _array(outputs).astype(np.float64)
    if z.ndim == 1 or (z.ndim >= 2 and z.shape[1] == 1):
        z = z.reshape(z.shape[0], *z.shape[2:]) if z.ndim >= 2 else z
        p1 = 1 / (1 + np.exp(-z))
        return np.stack([1 - p1, p1], axis=1)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _labels(targets, n):
    t = _array(targets)
    if t.ndim > 1 and t.shape[1] == 1:
        t = t.reshape(len(t), *t.shape[2:])
    t = t.astype(np.int64)
    if len(t) != n:
        raise ValueError(f"metrics: {n} predictions but {len(t)} targets")
    return t


def _predictions(outputs):
    return probabilities(outputs).argmax(axis=1)


def confusion_matrix(outputs, targets, num_classes=None):
    """(C, C) counts, rows = true class, columns = predicted class; outputs are logits."""
    pred = _predictions(outputs)
    true = _labels(targets, len(pred))
    c = num_classes or int(max(pred.max(initial=0), true.max(initial=0)) + 1)
    return np.bincount(true.ravel() * c + pred.ravel(), minlength=c * c).reshape(c, c)


def accuracy(outputs, targets):
    pred = _predictions(outputs)
    return float(np.mean(pred == _labels(targets, len(pred))))


def balanced_accuracy(outputs, targets):
    """Mean recall over the classes present in targets."""
    cm = confusion_matrix(outputs, targets)
    present = cm.sum(axis=1) > 0
    return float(np.mean(np.diag(cm)[present] / cm.sum(axis=1)[present]))


def sensitivity(outputs, targets, positive=1):
    """Recall of the positive class: TP / (TP + FN)."""
    cm = confusion_matrix(outputs, targets, num_classes=max(2, positive + 1))
    total = cm[positive].sum()
    return float(cm[positive, positive] / total) if total else float("nan")


def specificity(outputs, targets, positive=1):
    """Recall of the negatives: TN / (TN + FP) with everything but `positive` negative."""
    cm = confusion_matrix(outputs, targets, num_classes=max(2, positive + 1))
    negatives = np.delete(np.arange(len(cm)), positive)
    tn = cm[np.ix_(negatives, negatives)].sum()
    fp = cm[negatives, positive].sum()
    return float(tn / (tn + fp)) if tn + fp else float("nan")


def _binary_auc(scores, positive):
    """Area under the ROC curve = P(score of a positive > score of a negative), ties
    counted half (the Mann-Whitney U statistic on average ranks)."""
    positive = positive.astype(bool)
    n_pos, n_neg = positive.sum(), (~positive).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average ranks over ties
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def roc_auc(outputs, targets):
    """ROC AUC from logits: binary (positive class 1) or the macro one-vs-rest average."""
    probs = probabilities(outputs)
    true = _labels(targets, len(probs))
    if probs.ndim > 2:  # per-pixel: flatten
        probs = np.moveaxis(probs, 1, -1).reshape(-1, probs.shape[1])
        true = true.reshape(-1)
    if probs.shape[1] == 2:
        return _binary_auc(probs[:, 1], true == 1)
    aucs = [_binary_auc(probs[:, k], true == k) for k in range(probs.shape[1])
            if 0 < (true == k).sum() < len(true)]
    return float(np.mean(aucs)) if aucs else float("nan")


def dice_score(outputs, targets, include_background=False, smooth=1e-6):
    """Mean hard Dice over classes (and samples) between argmax(outputs) (N, C, *) and label
    maps targets (N, *)."""
    probs = probabilities(outputs)
    pred = probs.argmax(axis=1)
    true = _labels(targets, len(pred))
    if true.shape != pred.shape:
        raise ValueError(f"dice_score: target shape {true.shape} does not match the "
                         f"predicted label maps {pred.shape}")
    scores = []
    for k in range(0 if include_background else 1, probs.shape[1]):
        p, t = pred == k, true == k
        axes = tuple(range(1, p.ndim))
        inter = (p & t).sum(axis=axes)
        denom = p.sum(axis=axes) + t.sum(axis=axes)
        scores.append(np.where(denom > 0, (2 * inter + smooth) / (denom + smooth), 1.0))
    return float(np.mean(scores)) if scores else float("nan")


def psnr(outputs, targets, data_range=None):
    """Peak signal-to-noise ratio in dB (data_range: the targets' max - min by default)."""
    x, y = _array(outputs).astype(np.float64), _array(targets).astype(np.float64)
    if x.shape != y.shape:
        raise ValueError(f"psnr: shapes {x.shape} and {y.shape} differ")
    data_range = float(y.max() - y.min()) if data_range is None else float(data_range)
    mse = np.mean((x - y) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(data_range ** 2 / mse))


def ssim(outputs, targets, data_range=None, sigma=1.5, dims=None):
    """Structural similarity (Wang et al., 2004) with a Gaussian window, averaged over the
    image; (N, C, H, W) / (N, C, D, H, W) or single images (dims inferred from ndim)."""
    from ..data.functional import gaussian_blur

    x, y = _array(outputs).astype(np.float64), _array(targets).astype(np.float64)
    if x.shape != y.shape:
        raise ValueError(f"ssim: shapes {x.shape} and {y.shape} differ")
    if dims is None:
        dims = 3 if x.ndim == 5 else 2
    data_range = float(y.max() - y.min()) if data_range is None else float(data_range)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2

    def blur(a):
        return gaussian_blur(a, sigma, dims, mode="reflect").astype(np.float64)

    mu_x, mu_y = blur(x), blur(y)
    sxx = blur(x * x) - mu_x ** 2
    syy = blur(y * y) - mu_y ** 2
    sxy = blur(x * y) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x ** 2 + mu_y ** 2 + c1) * (sxx + syy + c2)
    return float(np.mean(num / den))


METRICS = {"accuracy": accuracy, "balanced_accuracy": balanced_accuracy, "roc_auc": roc_auc,
           "auc": roc_auc, "sensitivity": sensitivity, "specificity": specificity,
           "dice": dice_score, "psnr": psnr, "ssim": ssim}
