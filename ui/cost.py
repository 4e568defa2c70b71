"""What a slow run will cost, said before it runs, the same way on every page (LIME, Compare,
Sanity): forward passes of the model, and the time they take from this model's forward pass
as measured on this machine (:func:`viz_core.methods.steps.forward_seconds`, looked up at each call)."""
from __future__ import annotations

from viz_core.methods import registry
from viz_core.methods import steps

#: Above this estimate a page offers its quick preset.
SLOW_SECONDS = 60


def duration(seconds: float) -> str:
    """``"~40 s"`` or, from 90 s on, ``"~4 min"``."""
    return f"~{max(1.0, seconds):.0f} s" if seconds < 90 else f"~{seconds / 60:.0f} min"


def run_seconds(model, passes: float) -> float:
    """Seconds ``passes`` forward passes of ``model`` take here (its pass measured once)."""
    return float(passes) * steps.forward_seconds(model)


def cost_text(model, passes: float) -> str:
    """``"about 336 forward passes, ~4 min here"``."""
    return (f"about {registry.format_passes(passes)}, "
            f"{duration(run_seconds(model, passes))} here")
