"""Training, evaluation and export of the shared-embedding pair model."""
