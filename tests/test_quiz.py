"""The class quiz: the board (bounds, expiry on an injected clock, what each pass may read,
concurrent students) and the questions (right answers against an independent computation on a
tiny seeded model)."""
from __future__ import annotations

import re
import threading

import keras
import numpy as np
import pytest
import tensorflow as tf

from viz_core.errors import ParameterError
from viz_core.inputs.intake import image_from_array
from viz_core.models.in_memory import from_keras
from viz_core.runtime.quiz import (CODE_ALPHABET, CODE_LENGTH, Question, QuizBoard, QuizError,
                                   StudentPass, TeacherPass, normal_code)
from viz_core.runtime.quiz_questions import CELLS, MARGIN, cell_box, cell_of, quiz_questions


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def two_questions():
    return [Question("unit", "Which image?", ("Image A", "Image B"), 1),
            Question("where", "Where?", CELLS, 4)]


# -- board ---------------------------------------------------------------------------------------
def test_codes_are_short_unambiguous_and_typed_loosely():
    board = QuizBoard()
    codes = {board.start(two_questions()).code for _ in range(20)}
    assert len(codes) == 20
    assert all(len(c) == CODE_LENGTH and set(c) <= set(CODE_ALPHABET) for c in codes)
    assert not set("01ILO") & set(CODE_ALPHABET)
    code = sorted(codes)[0]
    typed = f" {code[:2].lower()}-{code[2:]} "
    assert normal_code(typed) == code
    assert board.join(typed, "Ann").code == code


def test_bounds_refuse_the_next_quiz_student_and_question():
    board = QuizBoard(max_quizzes=2, max_students=3, max_questions=2)
    first = board.start(two_questions())
    board.start(two_questions())
    with pytest.raises(QuizError, match="holds 2 quizzes"):
        board.start(two_questions())
    with pytest.raises(QuizError, match="at most 2 questions; got 3"):
        board.start(two_questions() + two_questions()[:1])
    with pytest.raises(QuizError, match="at most 20 questions; got 22"):
        QuizBoard().start(two_questions() * 11)  # the default
    with pytest.raises(QuizError, match="at least one question"):
        board.start([])
    with pytest.raises(QuizError, match="'Where\\?' has 9 and answer None"):
        board.start([two_questions()[1].hidden()])
    with pytest.raises(ParameterError, match="right answer 2 is not one of the 2 choices"):
        Question("unit", "Which?", ("A", "B"), 2)
    for name in ("Ann", "Bo", "Cy"):
        board.join(first.code, name)
    with pytest.raises(QuizError, match="full \\(3 students\\)"):
        board.join(first.code, "Di")
    with pytest.raises(ParameterError, match="number of students in one quiz"):
        QuizBoard(max_students=0)
    with pytest.raises(ParameterError, match="quizzes on the board"):
        QuizBoard(max_quizzes=10**6)


def test_answers_are_checked_and_names_are_unique_whatever_the_case():
    board = QuizBoard()
    teacher = board.start(two_questions())
    ann = board.join(teacher.code, "  Ann   Lee ")
    assert ann.name == "Ann Lee"
    with pytest.raises(QuizError, match="has joined this quiz already"):
        board.join(teacher.code, "ann lee")
    with pytest.raises(QuizError, match="Type your name"):
        board.join(teacher.code, "   ")
    with pytest.raises(QuizError, match="at most 40"):
        board.join(teacher.code, "x" * 41)
    with pytest.raises(ParameterError, match="question number must be a whole number from 0 to 1"):
        board.answer(ann, 2, 0)
    with pytest.raises(ParameterError, match="choice must be a whole number from 0 to 8"):
        board.answer(ann, 1, 9)
    with pytest.raises(QuizError, match="no quiz with the code 'ZZZZZ'"):
        board.join("ZZZZZ", "Bo")


def test_an_idle_quiz_expires_and_a_used_one_stays():
    clock = Clock()
    board = QuizBoard(idle_minutes=10, clock=clock)
    idle, busy = board.start(two_questions()), board.start(two_questions())
    student = board.join(busy.code, "Ann")
    clock.now += 9 * 60
    board.answer(student, 0, 1)  # uses the busy quiz: its ten minutes start again
    clock.now += 2 * 60  # 11 minutes after the start, 2 after the answer
    assert not board.is_open(idle.code) and board.is_open(busy.code)
    assert len(board) == 1
    with pytest.raises(QuizError, match="no quiz with the code"):
        board.teacher_view(idle)
    assert board.teacher_view(busy).answers == 1
    clock.now += 10 * 60 + 1
    with pytest.raises(QuizError, match="no quiz"):
        board.student_view(student)
    assert len(board) == 0
    # an expired quiz frees its place on a full board
    small = QuizBoard(max_quizzes=1, idle_minutes=1, clock=clock)
    small.start(two_questions())
    clock.now += 61
    assert small.start(two_questions()).code


def test_a_student_sees_only_their_own_answers_and_the_teacher_sees_all():
    board = QuizBoard()
    teacher = board.start(two_questions())
    ann, bo, cy = (board.join(teacher.code, n) for n in ("Ann", "Bo", "Cy"))
    board.answer(ann, 0, 1)
    board.answer(ann, 1, 4)
    board.answer(bo, 0, 0)
    board.answer(cy, 1, 2)
    board.answer(cy, 1, 4)  # changed: the last answer counts

    mine = board.student_view(ann)
    assert mine.answers == {0: 1, 1: 4} and mine.name == "Ann"
    assert [q.answer for q in mine.questions] == [None, None] and mine.right is None
    text = repr(mine)
    assert "Bo" not in text and "Cy" not in text
    assert board.student_view(bo).answers == {0: 0}
    assert board.student_view(ann).questions[1] is mine.questions[1]  # pages cache pictures by it

    view = board.teacher_view(teacher)
    assert [(s.name, s.answers, s.right) for s in view.students] == [
        ("Ann", {0: 1, 1: 4}, 2), ("Bo", {0: 0}, 0), ("Cy", {1: 4}, 1)]
    assert view.counts == ((1, 1), (0, 0, 0, 0, 2, 0, 0, 0, 0))
    assert view.answers == 4 and view.score == pytest.approx(3 / 4)
    assert [q.answer for q in view.questions] == [1, 4]

    board.reveal(teacher)
    revealed = board.student_view(bo)
    assert revealed.revealed and revealed.right == 0 and revealed.questions[0].answer == 1
    assert revealed.answers == {0: 0}
    with pytest.raises(QuizError, match="revealed"):
        board.answer(bo, 1, 4)


def test_passes_cannot_be_forged_from_the_code_and_a_name():
    board = QuizBoard()
    teacher = board.start(two_questions())
    ann = board.join(teacher.code, "Ann")
    with pytest.raises(QuizError, match="Only the teacher"):
        board.teacher_view(TeacherPass(teacher.code, ann.key))
    with pytest.raises(QuizError, match="has not joined"):
        board.student_view(StudentPass(teacher.code, "Ann", "guessed"))
    with pytest.raises(QuizError, match="has not joined"):
        board.answer(StudentPass(teacher.code, "Bo", ann.key), 0, 0)
    with pytest.raises(QuizError, match="Only the teacher"):
        board.end(TeacherPass(teacher.code, "guessed"))
    assert "key" not in repr(teacher) and ann.key not in repr(ann)
    board.end(teacher)
    assert not board.is_open(teacher.code)


def test_students_answering_at_once_are_all_counted():
    board = QuizBoard(max_students=40, max_quizzes=5)
    questions = two_questions()
    teacher = board.start(questions)
    errors, barrier = [], threading.Barrier(30)

    def student(i: int) -> None:
        try:
            barrier.wait()
            me = board.join(teacher.code, f"student {i}")
            for _ in range(20):  # each answer changed many times; the last one stays
                board.answer(me, 0, i % 2)
                board.answer(me, 1, i % 9)
                assert set(board.student_view(me).answers) <= {0, 1}
                board.teacher_view(teacher)
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=student, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    view = board.teacher_view(teacher)
    assert len(view.students) == 30 and view.answers == 60
    assert view.counts[0] == (15, 15)
    assert view.counts[1] == tuple(sum(1 for i in range(30) if i % 9 == c) for c in range(9))
    right = sum(i % 2 == 1 for i in range(30)) + sum(i % 9 == 4 for i in range(30))
    assert view.score == pytest.approx(right / 60)


def test_starting_at_once_never_passes_the_bound():
    board = QuizBoard(max_quizzes=7)
    started, barrier = [], threading.Barrier(16)

    def teacher() -> None:
        barrier.wait()
        try:
            started.append(board.start(two_questions()).code)
        except QuizError:
            pass

    threads = [threading.Thread(target=teacher) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(started) == len(set(started)) == 7 == len(board)


# -- questions -----------------------------------------------------------------------------------
SIDE = 24


@pytest.fixture(scope="module")
def tiny():
    """Two 'same' convs at full resolution (24 = 3 x 8, so each map pixel lies in one region)."""
    keras.utils.set_random_seed(3)
    model = keras.Sequential([
        keras.Input((SIDE, SIDE, 3)),
        keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="conv_a"),
        keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="conv_b"),
        keras.layers.GlobalAveragePooling2D(name="gap"),
        keras.layers.Dense(3, activation="softmax", name="head"),
    ])
    return from_keras(model, labels=["ant", "bee", "cat"], name="tiny")


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(7)
    pictures = []
    for i in range(8):  # a bright blob in a different place on each image
        img = rng.integers(0, 60, (SIDE, SIDE, 3)).astype(np.uint8)
        y, x = (i * 5) % 18, (i * 11) % 18
        img[y:y + 6, x:x + 6] = rng.integers(150, 255, 3)
        pictures.append(image_from_array(img, f"img{i}"))
    return tuple(pictures)


def independent(model, pixels: np.ndarray):
    """conv_b's activations, the logits and Grad-CAM of the top class, straight from Keras."""
    keras_model = model.model
    cut = keras.Model(keras_model.inputs, keras_model.get_layer("conv_b").output)
    kernel, bias = keras_model.get_layer("head").get_weights()
    x = tf.constant(pixels[None] / 255.0, tf.float32)
    with tf.GradientTape() as tape:
        maps = cut(x)
        tape.watch(maps)
        logits = tf.reduce_mean(maps, axis=(1, 2)) @ kernel + bias
        top = int(np.argmax(logits[0]))
        score = logits[0, top]
    grads = tape.gradient(score, maps)[0].numpy()
    maps = maps[0].numpy()
    cam = np.maximum((maps * grads.mean(axis=(0, 1))).sum(axis=-1), 0)
    return maps, top, cam


def which(images, model, display: np.ndarray) -> int:
    matches = [i for i, im in enumerate(images) if np.array_equal(model.view(im).display, display)]
    assert len(matches) == 1
    return matches[0]


def test_right_answers_match_an_independent_computation(tiny, images):
    questions = quiz_questions(tiny, images, count=6, seed=1, patterns=False)
    # unit and where in turn while units with a clear pair last (dead ReLUs have none)
    kinds = [q.kind for q in questions]
    assert len(kinds) == 6 and kinds[:2] == ["unit", "where"] and "unit" in kinds[2:]
    for q in questions:
        if q.kind == "unit":
            unit = int(re.search(r"unit (\d+) of conv_b", q.prompt)[1])
            a, b = (which(images, tiny, im) for im in q.images)
            mean_a, mean_b = (independent(tiny, tiny.view(images[i]).pixels)[0][..., unit].mean()
                              for i in (a, b))
            assert q.answer == (0 if mean_a > mean_b else 1)
            assert max(mean_a, mean_b) - min(mean_a, mean_b) >= MARGIN * max(mean_a, mean_b) - 1e-6
            assert q.choices == ("Image A", "Image B")
        else:
            i = which(images, tiny, q.images[0])
            _, top, cam = independent(tiny, tiny.view(images[i]).pixels)
            assert f"'{['ant', 'bee', 'cat'][top]}'" in q.prompt
            y, x = np.unravel_index(int(np.argmax(cam)), cam.shape)
            assert q.answer == (3 * y // SIDE) * 3 + 3 * x // SIDE
            assert q.choices == CELLS and q.heatmap.shape == (SIDE, SIDE)
    units = [q.prompt for q in questions if q.kind == "unit"]
    assert len(set(units)) == len(units)  # a unit is asked about once


def test_the_same_seed_draws_the_same_questions_and_another_seed_others(tiny, images):
    first = quiz_questions(tiny, images, count=4, seed=5, patterns=False)
    again = quiz_questions(tiny, images, count=4, seed=5, patterns=False)
    other = quiz_questions(tiny, images, count=4, seed=6, patterns=False)
    assert [(q.prompt, q.answer) for q in first] == [(q.prompt, q.answer) for q in again]
    assert [q.prompt for q in first] != [q.prompt for q in other]


def test_a_unit_question_carries_the_units_filter_pattern(tiny, images):
    from viz_core.features.filters import filter_patterns

    question = quiz_questions(tiny, images, count=1, seed=2)[0]
    unit = int(re.search(r"unit (\d+)", question.prompt)[1])
    expected = filter_patterns(tiny, "conv_b", [unit], method="fast").item(0).pattern
    assert np.array_equal(question.hint, expected)


def test_regions_and_bad_requests():
    heat = np.zeros((150, 150), np.float32)
    heat[149, 50] = 1.0  # bottom row, middle column (50 // 50 = 1)
    assert CELLS[cell_of(heat)] == "bottom"
    assert cell_box(8, 150, 150) == (100, 100, 150, 150)
    assert cell_box(4, 10, 10) == (3, 3, 6, 6)


def test_bad_requests_name_the_value(tiny, images):
    with pytest.raises(ParameterError, match="at least two images; got 1"):
        quiz_questions(tiny, images[:1])
    with pytest.raises(ParameterError, match="quiz questions must be a whole number from 1 to 20"):
        quiz_questions(tiny, images, count=0)
    with pytest.raises(ParameterError, match="'gap' has no feature maps"):
        quiz_questions(tiny, images, layer="gap")
