"""Memory under use: 300 reruns across all pages with the demo model, in one process.

One AppTest session walks the app as a student would: a round picks a sample image in the
sidebar, opens every page, changes a display option on some and runs LIME (100 samples); a
pass is one round per sample image (about 70 reruns). Resident memory (``VmRSS``) is read
after every round; the number that matters is its growth after the first pass (which imports,
loads and compiles everything and fills the caches with every image's results): it must stay
under 100 MB, which it only can if nothing leaks and every cache is bounded. The workbench's
cache sizes are reported next to it.

Run: ``python -m bench memory`` or ``python bench/bench_memory.py``.
"""
from __future__ import annotations

import gc
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RERUNS = 300
LIMIT_MB = 100
IMAGES = ("circle", "square", "triangle", "star", "circle_and_star", "square_and_triangle")
COLOURS = ("viridis", "magma", "plasma", "jet")


def rss_mb() -> float:
    """Resident memory of this process now, in MB (Linux ``/proc``; peak elsewhere)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run(reruns: int = RERUNS) -> dict:
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ["CNN_VIZ_CACHE"] = tempfile.mkdtemp(prefix="bench_memory_")  # filters start cold
    from streamlit.testing.v1 import AppTest

    from ui.state import workbench
    from viz_core.models.catalog import DEMO_MODEL_FILE

    if not DEMO_MODEL_FILE.exists():
        return {"skipped": f"the demo model {DEMO_MODEL_FILE} is not built yet"}
    pages = [p for p in ("pages/feature_maps.py", "pages/filters.py", "pages/heatmaps.py",
                         "pages/lime.py", "pages/compare.py", "pages/sanity.py")
             if (ROOT / p).exists()]
    workbench.clear()
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.run()
    count, errors = 1, []
    start_rss = rss_mb()
    started = time.perf_counter()

    def step(action) -> None:
        nonlocal count
        action()
        count += 1
        errors.extend(f"{e.value}"[:200] for e in at.exception)

    rounds = []  # one round: one image through every page; a pass: every image once
    while count < reruns:
        r = len(rounds)
        if r:  # back to the Overview, then the next image picked in the sidebar
            step(lambda: at.switch_page("pages/overview.py").run())
        step(lambda: at.sidebar.selectbox(key="image").set_value(IMAGES[r % len(IMAGES)]).run())
        for page in pages:
            if count >= reruns:
                break
            step(lambda: at.switch_page(page).run())
            colour = COLOURS[r % len(COLOURS)]
            if page.endswith("feature_maps.py"):
                step(lambda: at.selectbox(key="fm_cmap").set_value(colour).run())
            elif page.endswith("heatmaps.py"):
                step(lambda: at.selectbox(key="cam_colormap").set_value(colour).run())
                step(lambda: at.selectbox(key="cam_method").set_value(
                    "gradcam++" if r % 2 else "gradcam").run())
            elif page.endswith("lime.py"):
                step(lambda: at.select_slider(key="lime_samples").set_value(100).run())
                if not at.button(key="lime_run").proto.disabled:  # disabled: answers cached
                    step(lambda: at.button(key="lime_run").click().run())
        rounds.append({"reruns": count, "rss_mb": round(rss_mb(), 1),
                       "seconds": round(time.perf_counter() - started, 1)})
    end_rss = rss_mb()
    gc.collect()
    after_gc = rss_mb()
    per_pass = len(IMAGES)
    first = rounds[min(per_pass, len(rounds)) - 1]
    bench = workbench()
    growth = end_rss - first["rss_mb"]
    return {
        "reruns": count,
        "passes": round(len(rounds) / per_pass, 2),
        "images": list(IMAGES),
        "pages": ["pages/overview.py", *pages],
        "rss_start_mb": round(start_rss, 1),
        "rss_after_first_image_mb": rounds[0]["rss_mb"],
        "first_pass_reruns": first["reruns"],
        "rss_after_first_pass_mb": first["rss_mb"],
        "rss_end_mb": round(end_rss, 1),
        "rss_end_after_gc_mb": round(after_gc, 1),
        "rss_max_mb": max(p["rss_mb"] for p in rounds),
        "rss_max_after_first_pass_mb": max(p["rss_mb"] for p in rounds[per_pass - 1:]),
        "growth_after_first_pass_mb": round(growth, 1),
        "growth_ok": growth < LIMIT_MB,
        "pages_without_errors": not errors,
        "limit_mb": LIMIT_MB,
        "per_image_round_rss_mb": [p["rss_mb"] for p in rounds],
        "seconds": round(time.perf_counter() - started, 1),
        "seconds_per_rerun": round((time.perf_counter() - started) / max(count - 1, 1), 3),
        "result_cache_entries": len(bench.results),
        "result_cache_mb": round(bench.results.total_bytes / 2**20, 1),
        "result_cache_bounds": [bench.results.max_entries,
                                round(bench.results.max_bytes / 2**20)],
        "image_cache_entries": len(bench.images),
        "model_cache_entries": len(bench.models),
        "errors": errors[:5],
        "malloc_arena_max": os.environ.get("MALLOC_ARENA_MAX", "glibc default"),
    }


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
