"""Training: the Trainer (fit / evaluate / predict with early stopping, checkpoints and an
overfitting warning), its History, metrics and safe checkpoints."""

from . import metrics
from .checkpoint import (CheckpointError, load_checkpoint, load_state_dict, save_checkpoint,
                         save_state_dict)
from .metrics import (accuracy, balanced_accuracy, dice_score, psnr, roc_auc, sensitivity,
                      specificity, ssim)
from .trainer import History, OverfittingWarning, Trainer

__all__ = ["Trainer", "History", "OverfittingWarning", "metrics", "save_checkpoint",
           "load_checkpoint", "save_state_dict", "load_state_dict", "CheckpointError",
           "accuracy", "balanced_accuracy", "roc_auc", "sensitivity", "specificity",
           "dice_score", "psnr", "ssim"]
