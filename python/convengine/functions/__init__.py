"""Differentiable operations, one module per family: forward and backward side by side."""
