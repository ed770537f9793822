"""Training: metrics, safe checkpoints (atomic, verified), the Trainer (learning happens,
early stopping restores the best weights, resume continues exactly, overfitting warning,
history files) and a short PneumoniaMNIST run that must clearly learn."""

import itertools
import json
import pathlib
import warnings

import numpy as np
import pytest

import convengine as ce
from convengine import data, nn, optim
from convengine.training import (CheckpointError, History, OverfittingWarning, Trainer,
                                 load_checkpoint, load_state_dict, metrics, save_checkpoint,
                                 save_state_dict)

REPO = pathlib.Path(__file__).resolve().parents[1]
PNEUMONIA = REPO.parent / "shared" / "data" / "pneumoniamnist_balanced.npz"


# ----- metrics -----------------------------------------------------------------------------------

def test_classification_metrics_by_hand():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [1.0, 0.5], [0.2, 0.1], [0.0, 3.0]])
    y = np.array([0, 1, 1, 0, 1])
    # predictions: 0, 1, 0, 0, 1 -> TP 2, FN 1, TN 2, FP 0
    assert metrics.accuracy(logits, y) == pytest.approx(0.8)
    assert metrics.sensitivity(logits, y) == pytest.approx(2 / 3)
    assert metrics.specificity(logits, y) == pytest.approx(1.0)
    assert metrics.balanced_accuracy(logits, y) == pytest.approx((1 + 2 / 3) / 2)
    np.testing.assert_array_equal(metrics.confusion_matrix(logits, y), [[2, 0], [1, 2]])
    # AUC against the pairwise definition, with ties
    rng = np.random.default_rng(0)
    scores = np.round(rng.standard_normal(40), 1)
    labels = rng.integers(0, 2, 40)
    pairs = [(s1 > s0) + 0.5 * (s1 == s0) for s1, s0 in itertools.product(
        scores[labels == 1], scores[labels == 0])]
    assert metrics.roc_auc(scores[:, None], labels) == pytest.approx(np.mean(pairs))
    three = rng.standard_normal((30, 3))
    t3 = rng.integers(0, 3, 30)
    assert 0 <= metrics.roc_auc(three, t3) <= 1
    perfect = np.eye(3)[t3] * 5
    assert metrics.roc_auc(perfect, t3) == 1.0 and metrics.accuracy(perfect, t3) == 1.0


def test_segmentation_and_image_metrics():
    masks = np.zeros((2, 6, 6), np.int64)
    masks[:, 1:4, 1:4] = 1
    logits = np.stack([1 - np.eye(2)[masks][..., k] for k in range(2)], axis=1) * -5
    assert metrics.dice_score(logits, masks) == pytest.approx(1.0)
    shifted = np.roll(logits, 1, axis=-1)
    assert metrics.dice_score(shifted, masks) == pytest.approx(2 * 6 / 18, rel=1e-4)
    rng = np.random.default_rng(0)
    clean = rng.uniform(0, 1, (2, 1, 16, 16))
    noisy = clean + rng.normal(0, 0.1, clean.shape)
    mse = np.mean((noisy - clean) ** 2)
    assert metrics.psnr(noisy, clean, data_range=1.0) == pytest.approx(10 * np.log10(1 / mse))
    assert metrics.ssim(clean, clean) == pytest.approx(1.0)
    assert 0 < metrics.ssim(noisy, clean) < 0.95
    vol = rng.uniform(0, 1, (1, 1, 8, 8, 8))
    assert metrics.ssim(vol, vol) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="shapes"):
        metrics.psnr(clean, clean[0])


# ----- checkpoints -------------------------------------------------------------------------------

def _small_model():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def test_checkpoint_roundtrip_of_nested_state(tmp_path):
    model = _small_model()
    opt = optim.Adam(model.parameters(), lr=0.01)
    model(ce.randn(5, 4)).sum().backward()
    opt.step()
    sched = optim.lr_scheduler.MultiStepLR(opt, [2, 4])
    state = {"model": model.state_dict(), "optimizer": opt.state_dict(),
             "scheduler": sched.state_dict(), "epoch": 3, "note": "x", "inf": float("inf")}
    path = tmp_path / "c.npz"
    save_checkpoint(str(path), state)
    back = load_checkpoint(str(path))
    assert back["epoch"] == 3 and back["inf"] == float("inf")
    assert back["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert set(back["optimizer"]["state"]) == {0, 1, 2, 3, 4, 5}
    assert back["scheduler"]["milestones"] == sched.milestones
    other = _small_model()
    other.load_state_dict(back["model"])
    for a, b in zip(model.state_dict().values(), other.state_dict().values()):
        np.testing.assert_array_equal(a.data, b.data)
    opt2 = optim.Adam(other.parameters())
    opt2.load_state_dict(back["optimizer"])
    assert opt2.param_groups[0]["lr"] == 0.01


def test_checkpoint_errors_and_atomic_write(tmp_path, monkeypatch):
    model = _small_model()
    path = tmp_path / "w.npz"
    save_state_dict(model, str(path))
    good = path.read_bytes()
    # truncated
    path.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(str(path))
    # one byte altered inside an array
    altered = bytearray(good)
    altered[len(good) // 3] ^= 0xFF
    path.write_bytes(bytes(altered))
    with pytest.raises(CheckpointError):
        load_checkpoint(str(path))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        load_checkpoint(str(tmp_path / "missing.npz"))
    np.savez(tmp_path / "plain.npz", x=np.zeros(2))
    with pytest.raises(CheckpointError, match="not a convengine checkpoint"):
        load_checkpoint(str(tmp_path / "plain.npz"))
    # a checkpoint of another model
    path.write_bytes(good)
    with pytest.raises(nn.StateDictError, match="size mismatch|Missing key"):
        load_state_dict(nn.Sequential(nn.Linear(4, 3)), str(path))
    # a failed save leaves the previous file untouched and no temporary behind
    def broken_savez(f, **entries):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        save_state_dict(model, str(path))
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plain.npz", "w.npz"]
    with pytest.raises(TypeError, match="cannot store"):
        save_checkpoint(str(tmp_path / "x.npz"), {"f": lambda: 0})


# ----- trainer -----------------------------------------------------------------------------------

def _blobs(n=96, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    x = rng.standard_normal((n, 4)).astype(np.float32) + 1.5 * y[:, None]
    return data.TensorDataset(x, y)


def test_trainer_learns_and_records_history(tmp_path):
    ce.manual_seed(0)
    model = _small_model()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = optim.lr_scheduler.StepLR(opt, 2, gamma=0.5)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, sched,
                      metrics=["accuracy", "roc_auc", "balanced_accuracy", "sensitivity",
                               "specificity"], checkpoint_dir=str(tmp_path / "run"))
    train = data.DataLoader(_blobs(), batch_size=16, shuffle=True, generator=0)
    val = data.DataLoader(_blobs(48, seed=1), batch_size=48)
    history = trainer.fit(train, val, epochs=5)
    assert len(history) == 5 and history["lr"] == [0.1, 0.1, 0.05, 0.05, 0.025]
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert history["val_accuracy"][-1] > 0.8 and history["val_roc_auc"][-1] > 0.85
    for name in ("best.npz", "last.npz", "history.json", "history.csv"):
        assert (tmp_path / "run" / name).exists()
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert saved["epoch"] == [1, 2, 3, 4, 5]
    assert (tmp_path / "run" / "history.csv").read_text().splitlines()[0].startswith("epoch")
    result = trainer.evaluate(val)
    assert set(result) >= {"loss", "accuracy", "roc_auc"}
    assert trainer.predict(val).shape == (48, 2)


def test_early_stopping_restores_best_weights():
    ce.manual_seed(1)
    model = _small_model()
    # an absurd learning rate after the first epochs makes validation loss worse
    opt = optim.SGD(model.parameters(), lr=0.05)
    sched = optim.lr_scheduler.LambdaLR(opt, lambda e: 1.0 if e < 2 else 400.0)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, sched, early_stopping_patience=2,
                      overfit_patience=0)
    train = data.DataLoader(_blobs(), batch_size=32)
    val = data.DataLoader(_blobs(48, seed=1), batch_size=48)
    history = trainer.fit(train, val, epochs=20)
    assert trainer.stopped_early and len(history) < 20
    best_epoch, best = history.best("val_loss")
    assert trainer.best_epoch == best_epoch
    assert trainer.evaluate(val)["loss"] == pytest.approx(best, rel=1e-5)


def test_resume_continues_exactly(tmp_path):
    def make():
        ce.manual_seed(7)
        model = _small_model()
        opt = optim.Adam(model.parameters(), lr=0.01)
        return model, opt, Trainer(model, nn.CrossEntropyLoss(), opt,
                                   optim.lr_scheduler.ExponentialLR(opt, 0.9),
                                   checkpoint_dir=str(tmp_path / "a"))

    train = data.DataLoader(_blobs(), batch_size=16)
    val = data.DataLoader(_blobs(48, seed=1), batch_size=48)
    model_a, _, trainer_a = make()
    trainer_a.fit(train, val, epochs=2)
    model_b, _, trainer_b = make()
    trainer_b.fit(train, val, epochs=4, resume_from=str(tmp_path / "a" / "last.npz"))
    model_c, _, trainer_c = make()
    trainer_c.checkpoint_dir = None
    trainer_c.fit(train, val, epochs=4)
    assert trainer_b.history["epoch"] == [1, 2, 3, 4]
    for a, b in zip(model_b.state_dict().values(), model_c.state_dict().values()):
        np.testing.assert_allclose(a.data, b.data, rtol=1e-6, atol=1e-7)
    with pytest.raises(nn.StateDictError):
        Trainer(nn.Linear(4, 2), nn.CrossEntropyLoss(),
                optim.SGD(nn.Linear(4, 2).parameters(), lr=0.1)).load_checkpoint(
            str(tmp_path / "a" / "last.npz"))


def test_overfitting_warning():
    trainer = Trainer(_small_model(), nn.CrossEntropyLoss(),
                      optim.SGD(_small_model().parameters(), lr=0.1), overfit_patience=3)
    for epoch, (tr, va) in enumerate([(1.0, 1.0), (0.8, 0.9), (0.6, 0.95), (0.4, 1.0),
                                      (0.3, 1.1)], 1):
        trainer.history.append({"epoch": epoch, "train_loss": tr, "val_loss": va})
    with pytest.warns(OverfittingWarning, match="epoch 5"):
        trainer._check_overfitting()
    assert trainer.overfitting_epochs == [5]
    calm = Trainer(_small_model(), nn.CrossEntropyLoss(),
                   optim.SGD(_small_model().parameters(), lr=0.1))
    for epoch in range(1, 6):
        calm.history.append({"epoch": epoch, "train_loss": 1.0 / epoch,
                             "val_loss": 1.0 / epoch})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        calm._check_overfitting()


def test_trainer_bad_arguments():
    model = _small_model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="unknown metric"):
        Trainer(model, nn.CrossEntropyLoss(), opt, metrics=["f7"])
    with pytest.raises(ValueError, match="mode"):
        Trainer(model, nn.CrossEntropyLoss(), opt, mode="up")
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, monitor="val_auc")
    loader = data.DataLoader(_blobs(16), batch_size=8)
    with pytest.raises(ValueError, match="monitored quantity"):
        trainer.fit(loader, loader, epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        trainer.fit(loader, epochs=0)


def test_history_roundtrip(tmp_path):
    h = History()
    h.append({"epoch": 1, "train_loss": 1.0})
    h.append({"epoch": 2, "train_loss": 0.5, "val_loss": 0.7})
    assert np.isnan(h["val_loss"][0])
    h.to_json(tmp_path / "h.json")
    assert History.from_json(tmp_path / "h.json")["train_loss"] == [1.0, 0.5]


# ----- real data -----------------------------------------------------------------------------------

def _small_cnn():
    def block(i, o):
        return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU(),
                nn.MaxPool2d(2)]

    return nn.Sequential(*block(1, 8), *block(8, 16), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Dropout(0.2), nn.Linear(16, 2))


@pytest.mark.skipif(not PNEUMONIA.exists(), reason="../shared/data/pneumoniamnist_balanced.npz "
                                                   "is not present")
def test_pneumoniamnist_short_run_clearly_learns():
    ce.manual_seed(0)
    train = data.datasets.MedMNIST("train", path=str(PNEUMONIA))
    val = data.datasets.MedMNIST("val", path=str(PNEUMONIA))
    subset = data.stratified_split(train, (0.25, 0.75), generator=0)[0]  # ~600 images
    model = _small_cnn()
    opt = optim.AdamW(model.parameters(), lr=5e-3)
    trainer = Trainer(model, nn.CrossEntropyLoss(), opt, metrics=["accuracy", "roc_auc"])
    history = trainer.fit(data.DataLoader(subset, batch_size=32, shuffle=True, generator=0),
                          data.DataLoader(val, batch_size=270), epochs=3)
    assert history["train_loss"][-1] < history["train_loss"][0]
    assert max(history["val_roc_auc"]) > 0.85


def test_train_cli_on_phantom_data(tmp_path, capsys):
    from convengine.__main__ import main

    out = tmp_path / "run"
    assert main(["train", "--dataset", "phantom", "--task", "denoising", "--epochs", "1",
                 "--out", str(out), "--quiet", "--no-progress", "--batch-size", "32"]) == 0
    printed = capsys.readouterr().out
    assert "test: loss=" in printed and "psnr=" in printed
    for name in ("best.npz", "last.npz", "history.json", "history.csv", "test_metrics.json"):
        assert (out / name).exists()
    assert main(["train", "--dataset", "pneumoniamnist", "--data",
                 str(tmp_path / "missing.npz"), "--out", str(out)]) == 2
    assert "no file" in capsys.readouterr().err


def test_seeded_runs_are_reproducible():
    """Same seed: the same initial weights, shuffling, augmentation and dropout masks, so the
    same history to the last bit (with the prefetch thread on)."""
    from convengine.data import transforms as T

    def run():
        ce.manual_seed(5)
        ds = data.TransformedDataset(
            data.datasets.PhantomDataset(64, size=16, seed=2),
            T.Compose([T.RandomFlip(), T.RandomAffine(15, p=0.5), T.GaussianNoise(0.05)]))
        model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                              nn.Flatten(), nn.Dropout(0.3), nn.Linear(4 * 8 * 8, 2))
        trainer = Trainer(model, nn.CrossEntropyLoss(),
                          optim.Adam(model.parameters(), lr=0.01), metrics=["accuracy"],
                          seed=9)
        history = trainer.fit(data.DataLoader(ds, batch_size=16, shuffle=True), epochs=2)
        return history.to_dict(), [p.data.copy() for p in model.parameters()]

    (h1, p1), (h2, p2) = run(), run()
    assert h1["train_loss"] == h2["train_loss"]
    for a, b in zip(p1, p2):
        np.testing.assert_array_equal(a, b)


def test_history_plot(tmp_path):
    pytest.importorskip("matplotlib")
    h = History({"epoch": [1, 2], "train_loss": [1.0, 0.5], "val_loss": [1.1, 0.7]})
    h.plot(tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 0
