"""HOW to render: GL backend choice, pyrender passes, conditions, labels and the job runner."""
