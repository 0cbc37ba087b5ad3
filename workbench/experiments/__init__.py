"""Studies and the end-to-end demo that produce the README's results."""
