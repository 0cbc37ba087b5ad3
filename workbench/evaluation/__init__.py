"""Scripted evaluation: adversarial sweeps with a worst-case cascade, common corruptions,
condition shifts, honesty checks and the JSON/HTML report (``workbench robustness``)."""
