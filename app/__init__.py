"""The Streamlit app, run as scripts by ``workbench app`` (never imported by ``workbench``). Shipped
as ``workbench.resources.app``; find it with :func:`workbench.resources.app_dir`."""
