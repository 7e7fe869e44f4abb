"""Explainers: saliency, guided backprop, LIME, LAN masks, InterpretGAN."""
