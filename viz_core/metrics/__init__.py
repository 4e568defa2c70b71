"""Metrics: how far to trust an explanation (faithfulness, randomisation sanity, localisation) and how readable a filter pattern is."""
