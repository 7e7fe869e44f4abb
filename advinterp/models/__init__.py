"""Classifiers: builders, checkpoints, training, adversarial training, features."""
