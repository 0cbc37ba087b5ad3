"""Inspection helpers behind the Streamlit app: safe paths, dataset browsing, runs, previews."""
