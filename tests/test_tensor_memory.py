"""The dashboard's process takes memory so that its idle trim can give it back
(:mod:`ui.server_memory`, called first thing by ``app.py``).

With oneDNN's pool (TensorFlow's default on x86) an idle class server kept 254 MB for good;
with the settings, tensors come from malloc, which keeps big blocks in its heap (fast reuse)
until the idle trim. ``bench allocator`` measures the speed: about 3% slower than the pool.
"""
from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ui.server_memory import MALLOC_SETTINGS, TENSORS_FROM_MALLOC

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = [TENSORS_FROM_MALLOC[0]] + [env for _, env, _ in MALLOC_SETTINGS]

# Eight 224 x 224 images through two 64-channel convolutions (103 MB per activation); then a
# 200 MB block from malloc, written, freed; then malloc_trim. Printed: glibc's bytes in large blocks
# still mapped after the trim (mallinfo2's hblkhd: held by someone, the trim cannot return
# them), whether the 200 MB block came from the heap (not mapped on its own) and the resident
# memory before and after the trim.
_PROBE = r"""
import ctypes, json, sys
if sys.argv[1] == "server":
    from ui.server_memory import take_memory_as_a_server
    take_memory_as_a_server()
import numpy as np, keras, tensorflow as tf
from ui.idle import malloc_mb, resident_mb
model = keras.Sequential([keras.Input((224, 224, 3)), keras.layers.Conv2D(64, 3, padding="same"),
                          keras.layers.Conv2D(64, 3, padding="same"),
                          keras.layers.GlobalAveragePooling2D()])
x = np.random.default_rng(0).random((8, 224, 224, 3), dtype=np.float32)
step = tf.function(model)
for _ in range(2):
    step(x)
libc = ctypes.CDLL("libc.so.6")
libc.malloc.restype, libc.free.argtypes = ctypes.c_void_p, [ctypes.c_void_p]
before = malloc_mb()
block = libc.malloc(200 * 2**20)
ctypes.memset(block, 1, 200 * 2**20)  # resident
during = malloc_mb()
libc.free(block)
untrimmed = resident_mb()
libc.malloc_trim(0)
print(json.dumps({"held_mb": malloc_mb()["mmapped"],
                  "block_in_heap": during["mmapped"] - before["mmapped"] < 1,
                  "rss_untrimmed": untrimmed, "rss": resident_mb()}))
"""


def _probe(mode: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_app_takes_memory_as_a_server_before_anything_loads_tensorflow():
    tree = ast.parse((ROOT / "app.py").read_text())
    light = ("os", "pathlib", "streamlit", "ui.served", "ui.server_memory")
    called = first_heavy = None
    for n, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)) and first_heavy is None:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            if not all(name in light for name in names):
                first_heavy = n
        if isinstance(node, ast.If) and ast.unparse(node.test) == "served()" and \
                "take_memory_as_a_server" in ast.unparse(node.body[0]):
            called = n
    assert called is not None, "app.py does not call take_memory_as_a_server() when served"
    assert called < first_heavy, "it must come before the first heavy import"


def test_the_modules_app_imports_first_do_not_load_tensorflow():
    code = ("import sys, streamlit, ui.served, ui.server_memory; "
            "print([m for m in ('tensorflow', 'keras', 'viz_core') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, timeout=120, check=True)
    assert out.stdout.strip() == "[]"


def test_a_setting_the_environment_gives_is_kept(monkeypatch):
    from ui.server_memory import take_memory_as_a_server

    monkeypatch.setenv("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "0")
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "131072")
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    applied = take_memory_as_a_server()
    assert {k: applied[k] for k in SETTINGS} == dict.fromkeys(SETTINGS, False)
    assert os.environ["TF_ONEDNN_USE_SYSTEM_ALLOCATOR"] == "0"


# 256 MB of numpy arrays (numpy asks for huge pages on arrays of 4 MB and more), written;
# printed: the resident memory in transparent huge pages (MB) and whether they are off
_HUGE_PAGES = r"""
import ctypes, json, sys
from ui.server_memory import PR_SET_THP_DISABLE, huge_pages_off, take_memory_as_a_server
if sys.argv[1] == "server":
    take_memory_as_a_server()
else:  # as any process starts (the setting is inherited: the test process may have it)
    ctypes.CDLL("libc.so.6").prctl(PR_SET_THP_DISABLE, 0, 0, 0, 0)
import numpy as np
arrays = [np.ones(2**22) for _ in range(8)]
huge = [int(line.split()[1]) / 1024 for line in open("/proc/self/smaps_rollup")
        if line.startswith("AnonHugePages:")][0]
print(json.dumps({"huge_mb": huge, "off": huge_pages_off()}))
"""


def _huge_pages(mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", _HUGE_PAGES, mode], capture_output=True,
                         text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(not Path("/sys/kernel/mm/transparent_hugepage/enabled").exists()
                    or "[never]" in Path("/sys/kernel/mm/transparent_hugepage/enabled")
                    .read_text(), reason="this machine has no transparent huge pages")
def test_a_server_process_takes_no_huge_pages():
    # khugepaged refills a trimmed region's 2 MB stretches to whole huge pages: a server at
    # rest grew 16 MB every 10 s after its trim
    plain, server = _huge_pages("plain"), _huge_pages("server")
    assert plain["off"] is False and plain["huge_mb"] >= 64, plain  # 256 MB asked for
    assert server == {"huge_mb": 0, "off": True}


@pytest.mark.slow
def test_a_server_process_holds_no_tensor_pool_after_a_trim():
    plain, server = _probe("plain"), _probe("server")
    # oneDNN's pool keeps at least the two 103 MB activations' worth; in a server process only
    # TensorFlow's own start-up blocks stay (under 16 MB measured)
    assert plain["held_mb"] > 150, plain
    assert server["held_mb"] < 40, server
    # a big block comes from malloc's heap (mapped afresh by default) and stays resident until
    # the trim, which gives it back
    assert server["block_in_heap"] and not plain["block_in_heap"]
    assert server["rss_untrimmed"] - server["rss"] > 150, server
    assert plain["rss"] - server["rss"] > 150, (plain, server)


# A heavy-job worker runs a small model at 15 input shapes; printed: what malloc holds in use
# after a trim (MB) at start, once the work is done, and once the queue's workers are renewed
_RENEW = r"""
import ctypes, gc, json
from ui.server_memory import take_memory_as_a_server
take_memory_as_a_server()
import numpy as np, keras, tensorflow as tf
from ui.idle import malloc_mb
from viz_core.runtime.jobs import JobQueue

def in_use():
    gc.collect()
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    return malloc_mb()["in_use"]

def work(progress):
    for size in (64, 96, 128, 160, 224):
        model = keras.Sequential([keras.Input((size, size, 3)), keras.layers.Conv2D(32, 3),
                                  keras.layers.Conv2D(64, 3, strides=2),
                                  keras.layers.GlobalAveragePooling2D()])
        for batch in (1, 3, 8):
            x = tf.constant(np.random.default_rng(0).random((batch, size, size, 3), "float32"))
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(model(x))
            tape.gradient(y, x)

tf.constant(1.0) + 1
queue = JobQueue(workers=1)
start = in_use()
job = queue.submit("work", work, owner="a")
job.finished.wait(300)
done = in_use()
queue.renew_workers(wait=10)  # returns once the old thread has ended
print(json.dumps({"state": queue.status(job).state, "start": start, "done": done,
                  "renewed": in_use()}))
"""


@pytest.mark.slow
def test_renewed_job_workers_hand_back_tensorflows_kernels_kept_per_thread():
    env = {k: v for k, v in os.environ.items() if k not in SETTINGS}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", PYTHONPATH=str(ROOT))
    out = subprocess.run([sys.executable, "-c", _RENEW], capture_output=True, text=True,
                         env=env, cwd=ROOT, timeout=300, check=True)
    mb = json.loads(out.stdout.strip().splitlines()[-1])
    assert mb["state"] == "done"
    # measured: 117 MB at start, 167 after the work (the model gone), 125 once renewed
    assert mb["done"] - mb["start"] > 25, mb
    assert mb["done"] - mb["renewed"] > 20, mb
