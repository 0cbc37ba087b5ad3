"""Bundled LightningCLI configs: data, not code. Shipped as ``workbench.resources.configs``; read
them with :func:`workbench.resources.configs_dir`."""
