"""Robustness of a map to small input noise: max-sensitivity (Yeh et al. 2019, as Quantus)."""
from __future__ import annotations

import numpy as np

from viz_core.errors import ParameterError
from viz_core.inputs.intake import ModelImage
from viz_core.metrics.randomisation import Explain
from viz_core.metrics.registry import SENSITIVITY_RADIUS, SENSITIVITY_SAMPLES
from viz_core.models.targets import Target


def max_sensitivity(image: ModelImage, target: Target, explain: Explain, *,
                    samples: int = SENSITIVITY_SAMPLES, radius: float = SENSITIVITY_RADIUS,
                    seed: int = 0, heatmap: np.ndarray | None = None) -> float:
    """The largest relative change of the map under small input noise,
    ``max_i ||e(x + d_i) - e(x)|| / ||e(x)||`` (Frobenius norms, as Quantus).

    ``d_i`` is uniform noise in ``[-radius, radius]`` x 255 per pixel and channel, seeded;
    each noisy copy gets its own digest, so cached maps of the image are not reused for it.
    Lower = a more robust map. An empty map (norm 0) gives NaN.

    Parameters
    ----------
    image : ModelImage
    target : Target
    explain : callable(image, target) -> (H, W) map
        The judged method.
    heatmap : (H, W) or None
        ``explain(image, target)`` when already made.
    """
    if not 1 <= int(samples) <= 64:
        raise ParameterError(f"Max-sensitivity takes 1 to 64 noisy copies; got {samples}.")
    mine = explain(image, target) if heatmap is None else heatmap
    norm = float(np.linalg.norm(mine))
    if norm == 0.0:
        return float("nan")
    rng = np.random.default_rng(seed)
    worst = 0.0
    for i in range(int(samples)):
        noise = rng.uniform(-radius * 255.0, radius * 255.0, image.pixels.shape)
        noisy = ModelImage(original=image.original,
                           pixels=np.clip(image.pixels + noise, 0, 255).astype("float32"),
                           name=image.name, digest=f"{image.digest}+noise{seed}.{i}.{radius}")
        other = explain(noisy, target)
        worst = max(worst, float(np.linalg.norm(other - mine)) / norm)
    return worst


def max_sensitivity_score(inp, *, samples: int = SENSITIVITY_SAMPLES,
                          radius: float = SENSITIVITY_RADIUS) -> float:
    """The registered metric: :func:`max_sensitivity` of the judged method."""
    return max_sensitivity(inp.image, inp.target, inp.explain, samples=samples, radius=radius,
                           seed=inp.seed, heatmap=inp.heatmap)
