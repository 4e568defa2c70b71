"""The sidebar shared by every page: model picker, image picker, optional second image."""
from __future__ import annotations

import streamlit as st

from viz_core.models.catalog import BUILTIN_MODELS, MAX_MODEL_BYTES, builtin, keras_cache_dir
from viz_core.models.downloads import describe_progress
from viz_core.errors import VizError
from viz_core.inputs.intake import MAX_BYTES, SUPPORTED_EXTENSIONS
from viz_core.models.preprocess import PREPROCESSING_HELP, PREPROCESSING_NAMES
from viz_core.models.preprocess_guess import guess_preprocessing, model_config
from viz_core.inputs.samples import list_samples, sample_bytes

from .feedback import show_error
from .settings import KEPT, named
from .state import Selection, set_selection, workbench
from .text import literal

UPLOAD = "upload"
MODEL_FILE_KEY = "model_file"  # widget keys the export bundle reads the upload back from
MODEL_LABELS_KEY = "model_labels"
NO_SECOND = "none"
# The Dataset page's "Open in the other pages": (path, LoadedImage) of the image it opened
DATASET_CHOICE = "dataset"
DATASET_IMAGE_KEY = "_dataset_image"
MODEL_FILE_TYPES = ("keras", "h5", "hdf5")  # the command line's MODEL_SUFFIXES, without dots
MAX_MODEL_MB = MAX_MODEL_BYTES // 2**20  # the limits live in viz_core; the widgets echo them
MAX_IMAGE_MB = MAX_BYTES // 2**20


def received_bytes(file, limit_bytes: int, what: str, where=st) -> bytes | None:
    """The bytes of an uploaded ``file``, or None after saying it is over ``limit_bytes``.

    The server accepts any upload up to ``server.maxUploadSize`` (the model limit) for every
    uploader; the browser's per-widget limit is only a courtesy, so it is checked again here,
    and a refused file is dropped from the server's upload store at once (its memory freed).
    """
    if file.size <= limit_bytes:
        return file.getvalue()
    _forget_upload(file)
    where.error(f"The {what} {literal(file.name)} is {file.size / 2**20:,.1f} MB; up to "
                f"{limit_bytes // 2**20} MB is accepted.", icon=":material/error:")
    return None


def kept_upload(label: str, key: str, types, limit_bytes: int, what: str, **kwargs):
    """A file uploader whose accepted file is remembered for the session: ``(file, bytes)``;
    ``(file, None)`` for a file over ``limit_bytes`` (said), ``(None, None)`` for none.

    Streamlit forgets an uploader's file whenever the uploader is not drawn (a sample image
    chosen, then "Upload an image…" again) and on a page switch made by code (the Dataset
    page's "Open in the other pages"). The last accepted file comes back then, with a line
    saying so, until another file is uploaded. (An empty uploader cannot tell the user's x
    from the browser forgetting: after a re-show it sends the file once, then nothing.)
    """
    kept_key = f"_kept_{key}"
    file = st.file_uploader(label, type=list(types), key=key, **kwargs)
    if file is not None:
        data = received_bytes(file, limit_bytes, what, st.sidebar)
        if data is not None:
            st.session_state[kept_key] = file
        return file, data
    kept = st.session_state.get(kept_key)
    if kept is None:
        return None, None
    st.caption(f"Using {literal(kept.name)}, uploaded before; upload a file to replace it.")
    return kept, kept.getvalue()


# The sidebar's value widgets, pinned by :func:`keep_for_page_switch`.
SIDEBAR_VALUES = ("model", "weights", "model_preprocessing", MODEL_LABELS_KEY, "image",
                  "second", "presenter")


def keep_for_page_switch() -> None:
    """Pin the sidebar's values before ``st.switch_page``, which carries no widget values from
    the browser (Streamlit drops every widget's value on it): a callback, before widgets run.
    The uploaded files come back through :func:`kept_upload`."""
    for key in SIDEBAR_VALUES:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def uploaded_name(key: str) -> str | None:
    """The name of the file the uploader ``key`` holds (or kept), for the view's link."""
    file = st.session_state.get(key) or st.session_state.get(f"_kept_{key}")
    return getattr(file, "name", None)


def _forget_upload(file) -> None:
    """Drop ``file`` from Streamlit's per-session upload store (nothing to do in tests).

    A Streamlit internal (``tests/app/test_streamlit_internals.py`` fails loudly when it
    changes); without it the refused file's memory is freed when the session ends instead."""
    try:
        from streamlit.runtime import Runtime, exists
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        if exists() and ctx is not None:
            Runtime.instance().uploaded_file_mgr.remove_file(ctx.session_id, file.file_id)
    except (ImportError, AttributeError, TypeError):
        pass


def _renamed_note(model) -> None:
    """Say which layers got names TensorFlow can trace (``conv 1`` -> ``conv_1``)."""
    if model is not None and model.renamed_layers:
        pairs = ", ".join(f"{literal(old)} → {literal(new)}" for old, new in model.renamed_layers[:6])
        more = f" and {len(model.renamed_layers) - 6} more" if len(model.renamed_layers) > 6 else ""
        st.caption(f"Layers renamed so TensorFlow can use them: {pairs}{more}.")


def _suggest_preprocessing(file, data: bytes | None):
    """The preprocessing guessed from a newly uploaded model's config
    (:mod:`viz_core.models.preprocess_guess`), made the choice once per file; the user may change it."""
    if file is None or data is None:
        return None
    if st.session_state.get("_preprocessing_for") != file.file_id:
        guess = guess_preprocessing(model_config(data))
        st.session_state["_preprocessing_for"] = file.file_id
        st.session_state["_preprocessing_guess"] = guess
        st.session_state["model_preprocessing"] = guess.name
    return st.session_state.get("_preprocessing_guess")


def class_names(text: str) -> list[str]:
    """One class name per non-blank line (as ``--labels FILE`` reads them)."""
    return [line for line in text.splitlines() if line.strip()]


def _model_picker():
    titles = {m.name: m.title for m in BUILTIN_MODELS}
    titles[UPLOAD] = "Upload a model file (.keras / .h5)"
    choice = st.selectbox("Model", list(titles), format_func=titles.get,
                          **named("model", titles, None, every_page=True,
                                  initial=next(iter(titles))))
    bench = workbench()
    try:
        if choice == UPLOAD:
            # Streamlit states an uploader's limit in whole units, rounding over half a unit
            # up: 600 MB reads "1GB per file". Its line is hidden for this uploader and the
            # limit enforced is said in the label.
            st.html(f"<style>.st-key-{MODEL_FILE_KEY} "
                    "[data-testid='stFileUploaderDropzoneInstructions'] div > span "
                    "{display: none}</style>")
            # .hdf5 is the usual extension of Keras 2 files; the loader reads the format
            # from the bytes, so the extension only has to get past the browser's filter.
            file, data = kept_upload(
                f"Model file (.keras, .h5 or .hdf5, up to {MAX_MODEL_MB} MB)", MODEL_FILE_KEY,
                MODEL_FILE_TYPES, MAX_MODEL_BYTES, "model file", max_upload_size=MAX_MODEL_MB,
                help="Loaded with Keras safe mode: files with code are refused.")
            guess = _suggest_preprocessing(file, data)
            preprocessing = st.selectbox(
                "Preprocessing", PREPROCESSING_NAMES, index=PREPROCESSING_NAMES.index("unit"),
                key="model_preprocessing", **KEPT,
                help="\n\n".join(f"**{n}**: {PREPROCESSING_HELP[n]}" for n in PREPROCESSING_NAMES))
            hint = PREPROCESSING_HELP[preprocessing]
            st.caption(hint[:1].upper() + hint[1:] + "." + (
                f" Suggested: **{guess.name}**, as {literal(guess.reason)}." if guess else ""))
            names = st.text_area("Class names (one per line, optional)", key=MODEL_LABELS_KEY,
                                 height=90, **KEPT)
            if file is None:
                st.caption("Upload a model to continue.")
                return None
            labels = class_names(names) or None
            if data is None:
                return None
            with st.spinner("Loading the model…"):
                model = bench.uploaded_model(data, file.name, preprocessing=preprocessing,
                                             labels=labels)
            _renamed_note(model)
            return model
        spec = builtin(choice)
        weights = "bundled"
        download = None
        if not spec.bundled:
            # Offline classrooms: start from random weights when ImageNet's are not cached,
            # instead of a download that cannot work.
            cached = (keras_cache_dir() / spec.weights_file).exists()
            weights = st.radio("Weights", ("imagenet", "none"), horizontal=True,
                               **named("weights", ("imagenet", "none"), None, every_page=True,
                                       initial="imagenet" if cached else "none"),
                               format_func={"imagenet": "ImageNet", "none": "random (untrained)"}.get)
            if not cached and weights == "none":
                st.caption(f"ImageNet weights ({spec.weights_mb:,} MB) are not in Keras' cache "
                           f"({keras_cache_dir()}); choose ImageNet to download them where "
                           "there is a network.")
            if not cached and weights == "imagenet":
                download = DownloadBar(spec.title, st.empty())
        try:
            with st.spinner(f"Loading {titles[choice]}…"):
                return bench.builtin_model(choice, weights, progress=download)
        except VizError:
            if download is not None:
                download.clear()
            raise
    except VizError as exc:
        show_error(exc, st.sidebar)
        return None


class DownloadBar:
    """A ``progress(done_bytes, total_bytes, seconds)`` callback (:mod:`viz_core.models.downloads`)
    drawing a progress bar with the size and the time left in ``slot`` (an ``st.empty``).

    Redrawn at most every :attr:`EVERY` seconds (a download reports every megabyte) and at the
    end; the finished bar stays, saying how long the download took, until the next rerun.
    """

    EVERY = 0.25

    def __init__(self, title: str, slot):
        self.title = title
        self.slot = slot
        self._drawn_at = -1.0

    def __call__(self, done: int, total: int | None, seconds: float) -> None:
        finished = total is not None and done >= total
        if not finished and 0 <= self._drawn_at and seconds - self._drawn_at < self.EVERY:
            return
        self._drawn_at = seconds
        fraction, text = describe_progress(done, total, seconds)
        verb = "Downloaded" if finished else "Downloading"
        self.slot.progress(fraction or 0.0, text=f"{verb} {self.title}'s ImageNet weights: {text}")

    def clear(self) -> None:
        self.slot.empty()


# Models that see the generated shapes scenes: their images come first in the image list.
SHAPES_MODELS = frozenset({m.name for m in BUILTIN_MODELS if m.bundled} | {UPLOAD})


def _image_picker(label: str, key: str, model, *, optional: bool):
    samples = list_samples()
    wanted_kind = "shapes" if model is None or model.name in SHAPES_MODELS else "photo"
    ordered = [s for s in samples if s.kind == wanted_kind] + [
        s for s in samples if s.kind != wanted_kind]
    opened = None if optional else st.session_state.get(DATASET_IMAGE_KEY)
    options = ([NO_SECOND] if optional else []) + [s.name for s in ordered] + (
        [DATASET_CHOICE] if opened else []) + [UPLOAD]
    titles = {s.name: s.title for s in samples}
    titles[UPLOAD] = "Upload an image…"
    titles[NO_SECOND] = "(none)"
    if opened:
        titles[DATASET_CHOICE] = f"From the dataset: {opened[0]}"
    elif st.session_state.get(key) == DATASET_CHOICE:  # e.g. a link from another session
        st.session_state[key] = options[0]
    image_kwargs = named(key, options, NO_SECOND if optional else None, every_page=True,
                         initial=options[0])
    choice = st.selectbox(label, options, format_func=titles.get, **image_kwargs)
    bench = workbench()
    try:
        if choice == NO_SECOND:
            return None
        if choice == DATASET_CHOICE:
            return opened[1]
        if choice == UPLOAD:
            file, data = kept_upload(f"{label} file", f"{key}_file", SUPPORTED_EXTENSIONS,
                                     MAX_BYTES, "image", max_upload_size=MAX_IMAGE_MB)
            return None if data is None else bench.image(data, file.name)
        return bench.image(sample_bytes(choice), choice)
    except VizError as exc:
        show_error(exc, st.sidebar)
        return None


def draw_sidebar() -> Selection:
    """Draw the sidebar, store and return the selection."""
    with st.sidebar:
        st.header("Model")
        model = _model_picker()
        st.header("Image")
        image = _image_picker("Image", "image", model, optional=False)
        second = _image_picker("Second image (side by side)", "second", model, optional=True)
        st.divider()
        st.toggle("Presenter mode", **named("presenter", (True, False), False, every_page=True),
                  help="Large type for a projector, colour-blind-safe colour maps, short "
                       "messages, and the demo model's pictures prepared ahead.")
        st.caption("The address bar holds this view: copy it to share it.")
    selection = Selection(model=model, image=image, second=second)
    set_selection(selection)
    return selection
