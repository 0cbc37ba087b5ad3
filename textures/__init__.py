"""Bundled textures, installed as ``workbench.resources.textures`` (see NOTICE)."""
