"""WHAT to render: scene specs, assets and seeded randomizers (no OpenGL, no torch)."""
