"""Spotters beyond MEAN that work on the roi_series table: flow-peaks (training-free) and roi-tcn (a small TCN)."""
