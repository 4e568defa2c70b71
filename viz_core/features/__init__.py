"""Features: what a layer computes (feature maps) and what a unit responds to (filter patterns, feature visualisation)."""
