"""Gaussian-blob digit detector: model, targets, training, page inference, evaluation, weights."""
