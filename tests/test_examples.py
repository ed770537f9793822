"""Every script in examples/ runs in --quick mode and writes its metrics JSON and figures."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
PNEUMONIA = os.path.normpath(os.path.join(ROOT, "..", "shared", "data",
                                          "pneumoniamnist_balanced.npz"))
HAVE_MPL = importlib.util.find_spec("matplotlib") is not None
needs_pneumonia = pytest.mark.skipif(not os.path.isfile(PNEUMONIA),
                                     reason=f"{PNEUMONIA} not present")

# (id, script, extra args, metrics keys, figures, needs PneumoniaMNIST)
CASES = [
    ("classification", "train_pneumoniamnist.py", ["--data", PNEUMONIA],
     ["roc_auc", "balanced_accuracy", "sensitivity", "specificity", "confusion_matrix",
      "roc_fpr", "roc_tpr"],
     ["confusion_matrix.png", "roc_curve.png", "training_curves.png"], True),
    ("segmentation2d", "segment_phantoms.py", ["--dims", "2"],
     ["dice_organ", "dice_lesion", "dice_mean", "train_seconds"],
     ["overlays.png", "training_curves.png"], False),
    ("segmentation3d", "segment_phantoms.py", ["--dims", "3"],
     ["dice_organ", "dice_lesion", "dice_mean", "train_seconds"],
     ["overlays.png"], False),
    ("ct_denoising", "denoise_ct.py", [],
     ["psnr_fbp", "psnr_net", "psnr_gain_db", "ssim_fbp", "ssim_net"],
     ["denoising_examples.png", "training_curves.png"], False),
    ("transfer_learning", "transfer_learning.py", ["--data", PNEUMONIA],
     ["pretraining", "runs", "test_auc"], ["transfer_auc.png"], True),
    ("gradcam", "gradcam_phantoms.py", [],
     ["peak_in_lesion_gradcam", "peak_in_lesion_gradcampp",
      "rank_correlation_trained_vs_random"], ["gradcam.png"], False),
    ("adversarial", "adversarial_pneumonia.py", ["--data", PNEUMONIA],
     ["epsilons", "accuracy_fgsm", "accuracy_pgd_linf", "clean_accuracy"],
     ["accuracy_vs_eps.png"], True),
]


@pytest.mark.parametrize("script,extra,keys,figures,pneumonia",
                         [pytest.param(*c[1:], id=c[0],
                                       marks=[needs_pneumonia] if c[5] else [])
                          for c in CASES])
def test_example_quick(tmp_path, script, extra, keys, figures, pneumonia):
    out = tmp_path / "out"
    env = dict(os.environ, MPLBACKEND="Agg")
    proc = subprocess.run([sys.executable, os.path.join(EXAMPLES, script), "--quick",
                           "--threads", "1", "--out", str(out), *extra],
                          cwd=str(tmp_path), env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    with open(out / "metrics.json") as f:
        metrics = json.load(f)
    assert metrics["quick"] is True
    missing = [k for k in keys if k not in metrics]
    assert not missing, f"metrics.json lacks {missing}: {sorted(metrics)}"
    if HAVE_MPL:
        for name in figures:
            assert (out / name).is_file() and (out / name).stat().st_size > 1000, name


def test_radon_fbp_reconstructs_a_disk():
    sys.path.insert(0, EXAMPLES)
    try:
        import numpy as np
        from ct_radon import ParallelBeam
    finally:
        sys.path.remove(EXAMPLES)
    beam = ParallelBeam(32, 60)
    y, x = np.mgrid[-1:1:32j, -1:1:32j]
    disk = (x ** 2 + y ** 2 < 0.4).astype(np.float32)[None]
    sino = beam.project(disk)
    # every view integrates the whole mass
    np.testing.assert_allclose(sino.sum(axis=2), disk.sum(), rtol=1e-2)
    rec = beam.fbp(sino)[0]
    assert abs(rec[12:20, 12:20].mean() - 1.0) < 0.03
    assert np.abs(rec - disk[0]).mean() < 0.08
