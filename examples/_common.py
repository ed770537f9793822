"""Helpers shared by the example scripts (not part of the convengine package): output
folder, metrics JSON, and a lazily imported matplotlib (figures are skipped, with a note,
when matplotlib is missing: `pip install convengine[plot]`)."""

import json
import os
import time

import numpy as np


def out_dir(path):
    os.makedirs(path, exist_ok=True)
    return path


def pyplot():
    """matplotlib.pyplot with the non-interactive Agg backend, or None when not installed."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: figures skipped (pip install matplotlib)")
        return None
    return plt


def save(fig, out, name):
    path = os.path.join(out, name)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    import matplotlib.pyplot as plt
    plt.close(fig)
    print(f"wrote {path}")
    return path


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def write_metrics(out, metrics, name="metrics.json"):
    path = os.path.join(out, name)
    with open(path, "w") as f:
        json.dump(_plain(metrics), f, indent=2)
    print(f"wrote {path}")
    return path


class Timer:
    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self):
        return time.perf_counter() - self.start


def roc_curve(scores, positive):
    """(false-positive rates, true-positive rates) over all thresholds, from (0, 0) to (1, 1)."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    order = np.argsort(-scores, kind="mergesort")
    s, p = scores[order], positive[order]
    distinct = np.r_[np.nonzero(np.diff(s))[0], len(s) - 1]  # last index of each score
    tp = np.cumsum(p)[distinct]
    fp = np.cumsum(~p)[distinct]
    tpr = np.r_[0, tp / max(p.sum(), 1)]
    fpr = np.r_[0, fp / max((~p).sum(), 1)]
    return fpr, tpr
