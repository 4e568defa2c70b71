"""The dashboard: ``streamlit run app.py``.

Builds the navigation over ``pages/`` and the sidebar shared by all pages, restores the view
from the URL on a session's first run and mirrors it back into the URL after every run.
Pages read the selection from :mod:`ui.state` and render what :mod:`viz_core` computes.
"""
import os
from pathlib import Path

# Program entry: quiet TensorFlow's C++ start-up logs before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import streamlit as st  # noqa: E402

from ui.served import served  # noqa: E402
from ui.server_memory import take_memory_as_a_server  # noqa: E402

# A server runs all day: its tensors come from malloc, whose free pages the idle trim hands
# back, not from oneDNN's pool, which never shrinks (read once by TensorFlow, so set first).
# Once per server process (glibc's mallopt also tidies its heap); not under AppTest, whose
# runs share the test process.
if served():
    st.cache_resource(take_memory_as_a_server, show_spinner=False)()

st.set_page_config(page_title="CNN Explorer", page_icon=":material/visibility:", layout="wide")

# A session's first run loads TensorFlow and the model (5-9 s on a cold, quiet server; half a
# minute on a busy one): say so first, before the heavy imports, instead of an empty page. The
# message goes once the sidebar has the model, before the page runs (a page may end its run
# early with st.stop(), after which nothing can be removed).
STARTED_KEY = "_app_started"
starting = None if st.session_state.get(STARTED_KEY) else st.empty()
if starting is not None:
    starting.info("Starting CNN Explorer: loading the model…",
                  icon=":material/hourglass_top:")

from viz_core.runtime.quiet import import_tensorflow_quietly, quiet_library_logs  # noqa: E402

import_tensorflow_quietly()
quiet_library_logs()

from ui.config_reads import read_without_lock  # noqa: E402
from ui.guard import page_guard  # noqa: E402
from ui.share import write_to_url  # noqa: E402
from ui.script_runs import keep_keras_state  # noqa: E402
from ui.shell import draw_shell  # noqa: E402
from ui.state import job_queue  # noqa: E402

# After every run of every session Streamlit would reset Keras (its kernel cache and a full
# garbage collection) and collect all of TensorFlow's objects: 6x the CPU of a page visit.
keep_keras_state()
# Every message and widget reads a config option under one lock: a convoy with 30 sessions.
read_without_lock()

# (path, title, icon, section): the pages most visits start from sit in the bar itself; what
# the model found (atlas, concepts) and the lessons (arithmetic, quiz) are one menu of the bar,
# so the bar fits one row on a 1280-px projector (12 links in a row would put the last ones in
# an overflow menu, out of sight).
PAGES = (
    ("pages/overview.py", "Overview", ":material/home:", ""),
    ("pages/feature_maps.py", "Feature maps", ":material/grid_view:", ""),
    ("pages/filters.py", "Filter patterns", ":material/texture:", ""),
    ("pages/heatmaps.py", "Class heatmaps", ":material/local_fire_department:", ""),
    ("pages/lime.py", "LIME", ":material/extension:", ""),
    ("pages/compare.py", "Compare methods", ":material/compare:", ""),
    ("pages/sanity.py", "Sanity check", ":material/fact_check:", ""),
    ("pages/dataset.py", "Dataset", ":material/dataset:", ""),
    ("pages/atlas.py", "Neuron atlas", ":material/neurology:", "Go deeper"),
    ("pages/concepts.py", "Concepts", ":material/lightbulb:", "Go deeper"),
    ("pages/lesson.py", "How it computes", ":material/calculate:", "Go deeper"),
    ("pages/quiz.py", "Class quiz", ":material/quiz:", "Go deeper"),
)
ROOT = Path(__file__).resolve().parent

sections: dict[str, list] = {}
for i, (path, title, icon, section) in enumerate(PAGES):
    if (ROOT / path).exists():
        sections.setdefault(section, []).append(
            st.Page(path, title=title, icon=icon, default=(i == 0)))
navigation = st.navigation(sections, position="top")
try:
    # Any unexpected error becomes "Something went wrong with this model: ..." and a log entry;
    # st.stop() / st.rerun() are BaseExceptions and pass through. While the page is drawn,
    # heavy jobs give way at their next progress report (viz_core.runtime.jobs.PageRuns).
    with page_guard(), job_queue().pages.drawing():
        draw_shell(navigation.url_path)
        if starting is not None:
            st.session_state[STARTED_KEY] = True
            starting.empty()
        navigation.run()
finally:  # also when a page stops early with st.stop()
    write_to_url()
