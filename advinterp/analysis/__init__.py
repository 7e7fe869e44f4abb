"""Analyses: accuracy curves, attribute distances, localisation metrics, detection tables."""
