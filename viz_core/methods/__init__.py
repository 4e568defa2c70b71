"""Methods: the registry of explanation methods and their kernels (layer, pixel-gradient, perturbation, LIME)."""
