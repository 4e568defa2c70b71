"""AppTest for the Class quiz page on the demo model: a teacher session starts a quiz, student
sessions join and answer; the teacher's results and score are the board's, computed by hand
here, and no student's page holds another student's name or answers."""
from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from viz_core.models.catalog import load_builtin_model
from viz_core.runtime.quiz_questions import quiz_questions, sample_images

STUDENTS = ("Aaliyah", "Bastien", "Chiara")


def open_quiz_page() -> AppTest:
    at = AppTest.from_file("../../app.py", default_timeout=240)
    at.run()
    at.switch_page("pages/quiz.py")
    at.run()
    assert not at.exception, at.exception
    return at


def page_text(at: AppTest) -> str:
    """Everything a session's page shows as text (tables included)."""
    parts = [e.value for kind in ("markdown", "caption", "success", "error", "info")
             for e in at.get(kind)]
    parts += [str(m.label) + str(m.value) for m in at.metric]
    parts += [t.value.to_string() for t in at.table]
    return "\n".join(str(p) for p in parts)


@pytest.fixture(scope="module")
def expected():
    return quiz_questions(load_builtin_model("demo"), sample_images(), count=6, seed=0,
                          patterns=False)


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    import os

    from ui.quiz import quiz_board
    from ui.state import workbench

    os.environ["CNN_VIZ_CACHE"] = str(tmp_path_factory.mktemp("quiz_cache"))
    workbench.clear()
    quiz_board.clear()
    at = open_quiz_page()
    at.radio(key="quiz_role").set_value("teacher").run()
    assert at.selectbox(key="quiz_layer").value == "conv2d_4"
    at.button(key="quiz_draw").click().run()
    assert not at.exception, at.exception
    at.button(key="quiz_start").click().run()
    assert not at.exception, at.exception
    yield at
    quiz_board.clear()
    workbench.clear()
    os.environ.pop("CNN_VIZ_CACHE", None)


def code_of(at: AppTest) -> str:
    shown = [m.value.lstrip("#").strip() for m in at.markdown
             if m.value.lstrip("#").startswith(" Quiz code: ")]
    assert len(shown) == 1
    return shown[0].removeprefix("Quiz code: `").removesuffix("`")


def test_the_teacher_sees_the_code_and_the_right_answers(teacher, expected):
    from ui.quiz import quiz_board

    code = code_of(teacher)
    assert quiz_board().is_open(code)
    lines = [c.value for c in teacher.caption if c.value.startswith("Q")]
    assert lines == [f"Q{i + 1}: right answer **{q.choices[q.answer]}** · no answers yet"
                     for i, q in enumerate(expected)]
    assert {m.label: m.value for m in teacher.metric} == {"Students": "0", "Answers": "0",
                                                         "Score": "–"}
    # another page and back: still the teacher of the same quiz
    teacher.switch_page("pages/overview.py").run()
    teacher.switch_page("pages/quiz.py").run()
    assert not teacher.exception, teacher.exception
    assert teacher.radio(key="quiz_role").value == "teacher" and code_of(teacher) == code


def test_students_answer_and_the_teacher_sees_their_answers_and_score(teacher, expected):
    code = code_of(teacher)
    # Aaliyah: all right; Bastien: the first right, the second wrong; Chiara: the first, wrong
    wrong = [(q.answer + 1) % len(q.choices) for q in expected]
    plans = {"Aaliyah": {0: expected[0].answer, 1: expected[1].answer, 2: expected[2].answer},
             "Bastien": {0: expected[0].answer, 1: wrong[1]},
             "Chiara": {0: wrong[0]}}
    sessions = {}
    for name in STUDENTS:
        at = open_quiz_page()
        at.text_input(key="quiz_code").input(code.lower())
        at.text_input(key="quiz_name").input(name)
        next(b for b in at.button if b.label == "Join").click().run()
        assert not at.exception, at.exception
        assert any(m.value.startswith(f"You are **{name}** in the quiz `{code}`.")
                   for m in at.markdown)
        for question, choice in plans[name].items():
            at.radio(key=f"quiz_answer_{code}_{question}").set_value(choice).run()
            assert not at.exception, at.exception
        saved = [c.value for c in at.caption if c.value.startswith("Saved: ")]
        assert saved == [f"Saved: {expected[q].choices[c]}" for q, c in plans[name].items()]
        sessions[name] = at

    teacher.run()
    metrics = {m.label: m.value for m in teacher.metric}
    assert metrics == {"Students": "3", "Answers": "6", "Score": f"{4 / 6:.0%}"}
    table = teacher.table[0].value
    assert list(table["Student"]) == list(STUDENTS)
    assert list(table["Right"]) == ["3 of 6", "1 of 6", "0 of 6"]
    assert table["Q2"][1] == f"✗ {expected[1].choices[wrong[1]]}"

    for name, at in sessions.items():
        at.run()
        text = page_text(at)
        others = [n for n in STUDENTS if n != name]
        assert not any(other in text for other in others), (name, text)
        assert "Right answer" not in text and "Score" not in text

    # revealed: each student reads their own count, and still nobody else's
    next(b for b in teacher.button if b.label == "Reveal the answers to students").click().run()
    for name, at in sessions.items():
        at.run()
        right = sum(expected[q].answer == c for q, c in plans[name].items())
        assert f"you got {right} of 6 right" in at.success[0].value
        assert not any(other in page_text(at) for other in STUDENTS if other != name)


def test_a_wrong_code_and_a_taken_name_are_refused(teacher):
    code = code_of(teacher)
    at = open_quiz_page()
    at.text_input(key="quiz_code").input("ZZZZZ")
    at.text_input(key="quiz_name").input("Di")
    next(b for b in at.button if b.label == "Join").click().run()
    assert "no quiz with the code 'ZZZZZ'" in at.error[0].value
    at.text_input(key="quiz_code").input(code)
    at.text_input(key="quiz_name").input("aaliyah")
    next(b for b in at.button if b.label == "Join").click().run()
    assert "has joined this quiz already" in at.error[0].value


def test_an_ended_quiz_takes_its_students_back_to_the_join_form(teacher):
    code = code_of(teacher)
    student = open_quiz_page()
    student.text_input(key="quiz_code").input(code)
    student.text_input(key="quiz_name").input("Dmitri")
    next(b for b in student.button if b.label == "Join").click().run()
    assert any(m.value.startswith(f"You are **Dmitri** in the quiz `{code}`.")
               for m in student.markdown)
    next(b for b in teacher.button if b.label == "End the quiz").click().run()
    assert not teacher.exception, teacher.exception
    assert teacher.button(key="quiz_start").label == "Start the quiz"  # ready for another
    student.run()
    assert f"no quiz with the code '{code}'" in student.error[0].value
    student.run()
    assert [t.label for t in student.text_input] == ["Quiz code", "Your name"]


def test_the_region_pictures_frame_the_regions_and_the_right_one():
    import numpy as np

    from ui.quiz import RIGHT, answer_picture, grid_picture

    image = np.full((30, 30, 3), 100, np.uint8)
    grid = grid_picture(image)
    # 10 px regions, a 1 px white frame just inside each: columns/rows 0, 9, 10, 19, 20, 29
    assert (grid[15, [0, 9, 10, 19, 20, 29]] == 255).all() and (grid[15, [5, 15, 25]] == 100).all()
    assert (grid[[0, 9, 10, 19], 5] == 255).all() and (image == 100).all()  # the image untouched
    heat = np.zeros((30, 30), np.float32)
    heat[25, 5] = 1.0  # bottom left
    shown = answer_picture(image, heat, 6)
    assert tuple(shown[20, 5]) == RIGHT and tuple(shown[29, 5]) == RIGHT  # its top and bottom
    assert tuple(shown[15, 5]) != RIGHT  # the region above is not framed


def test_a_projected_teacher_screen_keeps_the_answers_until_revealed(monkeypatch,
                                                                    tmp_path, expected):
    """Presenter mode (the teacher's screen on the projector): who chose what and the right
    answers stay off it until revealed; the counts show; after the reveal, all of it."""
    import os

    import ui.presenter
    from ui.quiz import quiz_board
    from ui.state import workbench

    monkeypatch.setattr(ui.presenter, "warm_up", lambda bench, **kw: 0)  # no warm-up here
    ui.presenter._preparation.clear()
    monkeypatch.setitem(os.environ, "CNN_VIZ_CACHE", str(tmp_path))
    workbench.clear()
    quiz_board.clear()
    try:
        teacher = AppTest.from_file("../../app.py", default_timeout=240)
        teacher.query_params["presenter"] = "1"
        teacher.run()
        teacher.switch_page("pages/quiz.py").run()
        assert teacher.sidebar.toggle(key="presenter").value is True
        teacher.radio(key="quiz_role").set_value("teacher").run()  # in sight, not folded
        teacher.button(key="quiz_draw").click().run()
        teacher.button(key="quiz_start").click().run()
        assert not teacher.exception, teacher.exception
        code = code_of(teacher)
        assert any(m.value.startswith("## Quiz code: ") for m in teacher.markdown)  # larger
        student = open_quiz_page()
        student.text_input(key="quiz_code").input(code)
        student.text_input(key="quiz_name").input("Aaliyah")
        next(b for b in student.button if b.label == "Join").click().run()
        wrong = (expected[0].answer + 1) % len(expected[0].choices)
        student.radio(key=f"quiz_answer_{code}_0").set_value(wrong).run()

        teacher.run()
        text = page_text(teacher)
        assert "right answer **" not in text and "Right answer:" not in text
        assert "✗" not in text and "✓" not in text
        assert expected[0].choices[wrong] not in teacher.table[0].value.to_string()
        assert list(teacher.table[0].value["Q1"]) == ["answered"]
        assert list(teacher.table[0].value["Answered"]) == ["1 of 6"]
        assert [c.value for c in teacher.caption if c.value.startswith("Q")][:2] == [
            "Q1: 1 answer", "Q2: 0 answers"]
        assert [e.label for e in teacher.expander][-1] == "The questions"

        next(b for b in teacher.button
             if b.label == "Reveal the answers to students").click().run()
        text = page_text(teacher)
        assert f"Q1: right answer **{expected[0].choices[expected[0].answer]}**" in text
        assert list(teacher.table[0].value["Q1"]) == [f"✗ {expected[0].choices[wrong]}"]
    finally:
        quiz_board.clear()
        workbench.clear()
        ui.presenter._preparation.clear()


def link_of(at: AppTest) -> dict[str, str]:
    """The session's address bar parameters."""
    return {k: (v[0] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def test_the_quiz_link_holds_no_answers_code_names_or_draw(tmp_path, monkeypatch, expected):
    """A link copied from a teacher's or a student's quiz page holds no answer, no code, no
    name and not the draw (layer, count, number) that would let a student draw the same quiz
    as its teacher and read the right answers; after another page and back it still holds
    none, while the page still shows them (kept for the session)."""
    import os

    from ui.quiz import quiz_board
    from ui.state import workbench

    monkeypatch.setitem(os.environ, "CNN_VIZ_CACHE", str(tmp_path))
    workbench.clear()
    quiz_board.clear()
    try:
        teacher = open_quiz_page()
        teacher.radio(key="quiz_role").set_value("teacher").run()
        teacher.select_slider(key="quiz_count").set_value(4).run()
        teacher.number_input(key="quiz_seed").set_value(3).run()
        teacher.button(key="quiz_draw").click().run()
        teacher.switch_page("pages/overview.py").run()
        teacher.switch_page("pages/quiz.py").run()  # the draw's settings kept, not linked
        assert (teacher.select_slider(key="quiz_count").value,
                teacher.number_input(key="quiz_seed").value) == (4, 3)
        assert [k for k in link_of(teacher) if k.startswith("quiz")] == []
        teacher.button(key="quiz_start").click().run()
        assert not teacher.exception, teacher.exception
        code = code_of(teacher)
        student = open_quiz_page()
        student.text_input(key="quiz_code").input(code)
        student.text_input(key="quiz_name").input("Aaliyah")
        next(b for b in student.button if b.label == "Join").click().run()
        student.radio(key=f"quiz_answer_{code}_0").set_value(expected[0].answer).run()
        assert [c.value for c in student.caption if c.value.startswith("Saved: ")] == [
            f"Saved: {expected[0].choices[expected[0].answer]}"]
        for at in (teacher, student):  # another page and back: kept values reach the link
            at.switch_page("pages/overview.py").run()
            at.switch_page("pages/quiz.py").run()
            assert not at.exception, at.exception
        assert code_of(teacher) == code
        assert student.radio(key=f"quiz_answer_{code}_0").value == expected[0].answer

        secrets = {code, code.lower(), "Aaliyah", "teacher", *expected[0].choices}
        for at in (teacher, student):
            link = link_of(at)
            assert "model" in link  # the link is the page's: the sidebar's model is in it
            assert [k for k in link if k.startswith("quiz")] == [], link
            assert not any(s in v for s in secrets for v in link.values()), link
    finally:
        quiz_board.clear()
        workbench.clear()
