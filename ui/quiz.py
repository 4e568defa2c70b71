"""The class quiz's board (one per server process) and its two views: the teacher's (the code,
live results, the right answers, the score) and a student's (join, answer, own results).

A session's pass (:class:`viz_core.runtime.quiz.TeacherPass` or ``StudentPass``) lives in its
session state only, never in the URL, so another browser cannot read or answer in its name.
"""
from __future__ import annotations

import functools

import numpy as np
import streamlit as st

from viz_core.errors import VizError
from viz_core.render import overlay_heatmap, png_bytes
from viz_core.render.atlas import outlined
from viz_core.runtime.quiz import QuizBoard, QuizError, StudentPass, TeacherPass
from viz_core.runtime.quiz_questions import CELLS, cell_box, quiz_questions, sample_images

from .feedback import show_error
from .presenter import presenter_on
from .settings import KEPT
from .text import literal

TEACHER_KEY, STUDENT_KEY = "_quiz_teacher", "_quiz_student"
RESULTS_EVERY_S = 2  # the teacher's results refresh this often
REVEAL_CHECK_S = 5  # a student's page notices the revealed answers this often
TILE = 200  # px of a question's picture
REGIONS_TILE = 300  # a "where" question's picture: its nine regions large enough to tell apart
RIGHT = (40, 200, 80)  # the frame around the right region


@st.cache_resource(show_spinner=False)
def quiz_board() -> QuizBoard:
    """One board per server process, shared by every session (teachers and students)."""
    return QuizBoard()


def question_maker(disk):
    """``make(model, layer, count, seed, progress=, should_stop=)``: questions on the sample
    images, patterns kept in ``disk``; one function, so the workbench caches its results."""
    def make(model, layer, count, seed, progress=None, should_stop=None):
        return quiz_questions(model, sample_images(), count=count, seed=seed, layer=layer,
                              disk=disk, progress=progress, should_stop=should_stop)
    return make


# -- pictures ----------------------------------------------------------------------------------
def grid_picture(image: np.ndarray) -> np.ndarray:
    """The image with the 3x3 regions framed (what a "where" question asks about)."""
    height, width = image.shape[:2]
    out = image
    for cell in range(len(CELLS)):
        out = outlined(out, cell_box(cell, height, width), width=1)
    return out


def answer_picture(image: np.ndarray, heatmap: np.ndarray, cell: int) -> np.ndarray:
    """The Grad-CAM map over the image, the right region framed."""
    height, width = image.shape[:2]
    return outlined(overlay_heatmap(image, heatmap, colormap="jet"),
                    cell_box(cell, height, width), colour=RIGHT, width=3)


@functools.lru_cache(maxsize=256)
def question_pictures(question) -> tuple[bytes, ...]:
    """PNG bytes of a question's pictures, made once per question (a class of 30 redraws each
    on every answer): the images (framed in regions for "where") and the pattern, then the
    answer's picture when the question carries its map. Keyed by the question object itself
    (questions compare by identity), which the cache keeps alive while it holds it."""
    if question.kind == "unit":
        pictures = list(question.images) + ([question.hint] if question.hint is not None else [])
    else:
        pictures = [grid_picture(question.images[0])]
        if question.heatmap is not None and question.answer is not None:
            pictures.append(answer_picture(question.images[0], question.heatmap,
                                           question.answer))
    return tuple(png_bytes(np.asarray(p, dtype=np.uint8)) for p in pictures)


def show_question(number: int, question, revealed: bool) -> None:
    """A question's prompt and pictures; with ``revealed`` the right answer and why."""
    st.markdown(f"**{number + 1}. {literal(question.prompt)}**")
    pictures = question_pictures(question)
    if question.kind == "unit":
        columns = st.columns(3)
        captions = list(question.choices) + ["The unit's filter pattern"]
        for column, label, picture in zip(columns, captions, pictures):
            column.image(picture, caption=label, width=TILE)
    else:
        columns = st.columns(2)
        columns[0].image(pictures[0], caption="Regions: top left to bottom right",
                         width=REGIONS_TILE)
        if revealed and len(pictures) > 1:
            columns[1].image(pictures[1], caption="Grad-CAM, the right region framed",
                             width=REGIONS_TILE)
    if revealed and question.answer is not None:
        st.caption(f"Right answer: **{literal(question.choices[question.answer])}**. "
                   f"{literal(question.explanation)}")


# -- teacher -----------------------------------------------------------------------------------
def answers_hidden(view) -> bool:
    """In presenter mode the teacher's screen is the class's: the right answers and who chose
    what stay off it until the teacher reveals them."""
    return presenter_on() and not view.revealed


def teacher_pass() -> TeacherPass | None:
    """This session's quiz as its teacher, if it still exists on the board."""
    held = st.session_state.get(TEACHER_KEY)
    if held is not None and not quiz_board().is_open(held.code):
        st.session_state.pop(TEACHER_KEY, None)
        st.info(f"The quiz {held.code} has ended.", icon=":material/timer_off:")
        return None
    return held


def start_quiz(questions) -> bool:
    """Start a quiz of ``questions`` with this session as its teacher; False (and why, shown)
    when the board is full."""
    try:
        st.session_state[TEACHER_KEY] = quiz_board().start(questions)
    except QuizError as exc:
        show_error(exc)
        return False
    return True


@st.fragment(run_every=RESULTS_EVERY_S)
def live_results(teacher: TeacherPass) -> None:
    """Who answered what, the right answers and the score; refreshed on its own, so the rest
    of the page is not run again."""
    try:
        view = quiz_board().teacher_view(teacher)
    except QuizError as exc:
        show_error(exc)
        return
    first = st.columns(3)
    first[0].metric("Students", len(view.students))
    first[1].metric("Answers", view.answers)
    first[2].metric("Score", f"{view.score:.0%}" if view.answers else "–",
                    help="Right answers over answers given, the whole class together.")
    hidden = answers_hidden(view)
    if view.students:
        table = {"Student": [s.name for s in view.students]}
        for i, question in enumerate(view.questions):
            table[f"Q{i + 1}"] = [
                "" if i not in s.answers else "answered" if hidden else
                ("✓ " if s.answers[i] == question.answer else "✗ ") + question.choices[s.answers[i]]
                for s in view.students]
        table["Right" if not hidden else "Answered"] = [
            f"{s.right if not hidden else len(s.answers)} of {len(view.questions)}"
            for s in view.students]
        st.table(table, hide_index=True)
    else:
        st.caption("No student has joined yet.")
    if hidden:
        st.caption("Presenter mode: the right answers and each student's choices stay off "
                   "this screen until you reveal them.")
    for i, question in enumerate(view.questions):
        counts = ", ".join(f"{choice}: {n}" for choice, n in zip(question.choices,
                                                                   view.counts[i]) if n)
        if hidden:
            given = sum(view.counts[i])
            st.caption(f"Q{i + 1}: {given} answer{'s' if given != 1 else ''}")
            continue
        st.caption(f"Q{i + 1}: right answer **{literal(question.choices[question.answer])}**"
                   f" · {literal(counts) if counts else 'no answers yet'}")


def teacher_panel(teacher: TeacherPass) -> None:
    """The code to read out, the live results, the questions with their answers."""
    # on a projector the code is read from the back of the room: a size larger
    st.markdown(f"{'##' if presenter_on() else '###'} Quiz code: `{teacher.code}`")
    st.caption("Students open **Class quiz**, choose *Student*, and type this code and their "
               "name. Only you see everyone's answers.")
    live_results(teacher)
    board = quiz_board()
    try:
        view = board.teacher_view(teacher)
        buttons = st.columns(2)
        if buttons[0].button("Hide the answers again" if view.revealed
                             else "Reveal the answers to students", key="quiz_reveal"):
            board.reveal(teacher, not view.revealed)
            st.rerun()
        if buttons[1].button("End the quiz", key="quiz_end"):
            board.end(teacher)
            st.session_state.pop(TEACHER_KEY, None)
            st.rerun()
    except QuizError as exc:  # it ended (unused for too long) since the page checked
        st.session_state.pop(TEACHER_KEY, None)
        show_error(exc)
        return
    hidden = answers_hidden(view)
    with st.expander("The questions" if hidden else "The questions and their answers"):
        for i, question in enumerate(view.questions):
            show_question(i, question, revealed=not hidden)


# -- student -----------------------------------------------------------------------------------
def student_pass() -> StudentPass | None:
    return st.session_state.get(STUDENT_KEY)


def join_form() -> None:
    """Code and name; a good pair joins this session to the quiz."""
    # kept, not linked: the code opens a student's place in the quiz, the name is theirs
    with st.form("quiz_join"):
        code = st.text_input("Quiz code", max_chars=12, key="quiz_code",
                             help="The code your teacher shows, e.g. K7MPQ.", **KEPT)
        name = st.text_input("Your name", max_chars=40, key="quiz_name", **KEPT)
        joined = st.form_submit_button("Join", type="primary")
    if joined:
        try:
            st.session_state[STUDENT_KEY] = quiz_board().join(code, name)
        except VizError as exc:
            show_error(exc)
            return
        st.rerun()


def _record(student: StudentPass, question: int, key: str) -> None:
    choice = st.session_state.get(key)
    if choice is None:
        return
    try:
        quiz_board().answer(student, question, int(choice))
    except VizError as exc:
        st.session_state[f"_quiz_failed_{question}"] = str(exc)


@st.fragment
def answer_box(student: StudentPass, number: int, question, saved: int | None,
              revealed: bool) -> None:
    """One question's answer, saved on the board as it is chosen. Only this box runs again on
    a choice, not the page: a class answering at once would otherwise redraw every picture."""
    key = f"quiz_answer_{student.code}_{number}"
    # kept across pages, never linked: a student's answers are theirs alone (**KEPT)
    choice = st.radio("Your answer", range(len(question.choices)), key=key, index=None,
                      format_func=question.choices.__getitem__, horizontal=True,
                      disabled=revealed, on_change=_record, args=(student, number, key),
                      label_visibility="collapsed", **KEPT)
    failed = st.session_state.pop(f"_quiz_failed_{number}", None)
    if failed:
        st.error(literal(failed), icon=":material/error:")
    elif revealed and saved is not None:
        st.markdown("✓ right" if saved == question.answer else "✗ not this time")
    elif choice is not None and not revealed:
        st.caption(f"Saved: {literal(question.choices[choice])}")


@st.fragment(run_every=REVEAL_CHECK_S)
def watch_reveal(student: StudentPass, revealed: bool) -> None:
    """Reruns the page once the teacher reveals (or hides) the answers or ends the quiz."""
    try:
        now = quiz_board().student_view(student).revealed
    except QuizError:
        now = None
    if now != revealed:
        st.rerun(scope="app")


def student_panel(student: StudentPass) -> None:
    """This student's questions and own answers (saved on each choice); nothing of others'."""
    try:
        view = quiz_board().student_view(student)
    except QuizError as exc:
        st.session_state.pop(STUDENT_KEY, None)
        show_error(exc)
        return
    st.markdown(f"You are **{literal(view.name)}** in the quiz `{view.code}`. Each answer is "
                "saved as you choose it; you can change it until the teacher reveals the "
                "answers.")
    if view.revealed:
        st.success(f"The answers are out: you got {view.right} of {len(view.questions)} right.",
                   icon=":material/school:")
    watch_reveal(student, view.revealed)
    for i, question in enumerate(view.questions):
        show_question(i, question, view.revealed)
        answer_box(student, i, question, view.answers.get(i), view.revealed)
        st.divider()
    if st.button("Leave the quiz", key="quiz_leave"):
        st.session_state.pop(STUDENT_KEY, None)
        st.rerun()
