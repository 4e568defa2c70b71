"""Models: which exist, how each loads (uploads checked for safety first), what is inside (layers, nested sub-models), graph cuts, preprocessing, targets and predictions."""
