"""Bundled scene specs: data, not code. Shipped as ``workbench.resources.scenes``; read them with
:func:`workbench.resources.scenes_dir`."""
