"""workbench: synthetic training data and adversarial robustness."""

__version__ = "0.1.0"
