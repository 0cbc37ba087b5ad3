"""Adversarial examples: threat model, attacks (registry), EOT and the perceptual bound."""
