"""WHAT to render: scene specs, conditions, assets and seeded randomizers (no OpenGL, no torch)."""
