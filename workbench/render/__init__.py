"""HOW to render: GL backend choice, pyrender passes, labels and the job runner."""
