"""A class quiz board: a teacher starts a quiz and gets a short code, students join with the code
and a name, and their answers are pooled per quiz, in memory.

The board is an object its caller holds (the dashboard keeps one per server process); every
method takes one lock, so sessions answering at once never see a half-made change, and every
view is a frozen copy. What a view shows depends on the pass it is asked with: the teacher's
(given by :meth:`QuizBoard.start`) sees every answer, the right answers and the scores; a
student's (given by :meth:`QuizBoard.join`) sees that student's own answers only, and the right
answers once the teacher reveals them. Passes hold random keys (``secrets``), so knowing a
quiz's code or a classmate's name is not enough to read or answer for anyone else.

Bounded: quizzes on the board, students per quiz, questions per quiz, and a quiz is forgotten
after some minutes in which nobody used it.
"""
from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Sequence

from viz_core.errors import ParameterError, VizError
from viz_core.runtime.limits import Bound

# Codes are read aloud and typed on phones: no 0/O or 1/I/L to mix up.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 5  # 31**5 = 28.6 million codes: a guess hits one of 20 live quizzes 1 in 1.4 million
NAME_CHARACTERS = 40

# The board's bounds, checked when a board is made (a class server: a few rooms at once).
QUIZZES = Bound("the number of quizzes on the board", 1, 200)
STUDENTS = Bound("the number of students in one quiz", 1, 500)
QUESTIONS = Bound("the number of questions in one quiz", 1, 50)
IDLE_MINUTES = Bound("the minutes a quiz is kept unused", 1, 24 * 60)


class QuizError(VizError):
    """A quiz cannot be found, joined or answered (unknown code, name taken, board full...)."""


@dataclass(frozen=True, eq=False)
class Question:
    """One question of a quiz: a prompt, the choices and the right one.

    Attributes
    ----------
    kind : str
        ``"unit"`` (which image makes a unit fire more) or ``"where"`` (where the model looked).
    prompt : str
        What the students read.
    choices : tuple of str
        The answers offered, in the order shown.
    answer : int or None
        Index of the right choice; None in a student's view before the answers are revealed.
    explanation : str
        Why that answer is right, in numbers (shown with the right answer).
    images : tuple of np.ndarray
        (H, W, 3) uint8 pictures the question is about (the two images, or the one image).
    hint : np.ndarray or None
        (h, w, 3) uint8: the unit's filter pattern, shown with a ``"unit"`` question.
    heatmap : np.ndarray or None
        (H, W) float32 in [0, 1]: the map a ``"where"`` question was made from (teachers and
        revealed quizzes only).
    """

    kind: str
    prompt: str
    choices: tuple[str, ...]
    answer: int | None
    explanation: str = ""
    images: tuple[Any, ...] = ()
    hint: Any = None
    heatmap: Any = None

    def __post_init__(self):
        if self.answer is not None and not 0 <= self.answer < len(self.choices):
            raise ParameterError(f"The right answer {self.answer!r} is not one of the "
                                 f"{len(self.choices)} choices of {self.prompt!r}.")

    def hidden(self) -> Question:
        """The question as a student sees it before the answers are revealed: no right
        answer (None), explanation or map."""
        return replace(self, answer=None, explanation="", heatmap=None)


@dataclass(frozen=True)
class TeacherPass:
    """What a teacher's session keeps: the quiz's code and the key to its results."""

    code: str
    key: str = field(repr=False)


@dataclass(frozen=True)
class StudentPass:
    """What a student's session keeps: the quiz's code, the name and the key to its answers."""

    code: str
    name: str
    key: str = field(repr=False)


@dataclass(frozen=True)
class StudentResult:
    """One student's answers (question index -> choice index) and how many were right."""

    name: str
    answers: dict
    right: int


@dataclass(frozen=True, eq=False)
class TeacherView:
    """Everything about one quiz, for its teacher.

    Attributes
    ----------
    code : str
    questions : tuple of Question
        With their right answers.
    students : tuple of StudentResult
        In the order they joined.
    counts : tuple of tuple of int
        Per question, how many students chose each choice.
    answers : int
        Answers given, over all students and questions.
    score : float
        Fraction of the given answers that are right, in [0, 1] (0 before any answer).
    revealed : bool
        Whether students see the right answers.
    """

    code: str
    questions: tuple[Question, ...]
    students: tuple[StudentResult, ...]
    counts: tuple[tuple[int, ...], ...]
    answers: int
    score: float
    revealed: bool


@dataclass(frozen=True, eq=False)
class StudentView:
    """One quiz as one student sees it: the questions, this student's answers and nothing
    of anyone else's.

    Attributes
    ----------
    code, name : str
    questions : tuple of Question
        Right answers, explanations and maps left out (``answer is None``) until revealed.
    answers : dict
        Question index -> this student's choice index.
    revealed : bool
    right : int or None
        This student's right answers once revealed, else None.
    """

    code: str
    name: str
    questions: tuple[Question, ...]
    answers: dict
    revealed: bool
    right: int | None


@dataclass(eq=False)
class _Quiz:
    questions: tuple[Question, ...]
    teacher_key: str
    used: float
    # made once: every student view hands out the same objects (pages cache their pictures)
    hidden: tuple[Question, ...] = ()
    revealed: bool = False
    # name -> (key, {question: choice}); dicts keep the order students joined
    students: dict = field(default_factory=dict)


def normal_code(text: str) -> str:
    """A typed code as stored: upper case, spaces and dashes dropped (``"ab c-d2"`` -> ``"ABCD2"``)."""
    return "".join(ch for ch in str(text).upper() if ch not in " -\t")


def normal_name(text: str) -> str:
    """A student's name as shown: surrounding and repeated spaces dropped.

    Raises
    ------
    QuizError
        Empty, longer than 40 characters, or with control characters.
    """
    name = " ".join(str(text).split())
    if not name:
        raise QuizError("Type your name to join the quiz.")
    if len(name) > NAME_CHARACTERS or not name.isprintable():
        raise QuizError(f"A name has at most {NAME_CHARACTERS} printable characters; got "
                        f"{name[:NAME_CHARACTERS + 10]!r}.")
    return name


class QuizBoard:
    """The quizzes of one server, bounded and forgotten when idle.

    Parameters
    ----------
    max_quizzes : int
        Quizzes held at once; starting one more is refused until one expires or ends.
    max_students : int
        Students who can join one quiz.
    max_questions : int
        Questions in one quiz (so answers per quiz are at most ``max_students * max_questions``).
    idle_minutes : float
        A quiz nobody used (started, joined, answered or looked at) for this long is forgotten.
    clock : callable() -> float
        Seconds, monotonic; tests pass their own.
    """

    def __init__(self, *, max_quizzes: int = 20, max_students: int = 60,
                 max_questions: int = 20, idle_minutes: int = 90,
                 clock: Callable[[], float] = time.monotonic):
        self.max_quizzes = QUIZZES.check(max_quizzes)
        self.max_students = STUDENTS.check(max_students)
        self.max_questions = QUESTIONS.check(max_questions)
        self.idle_seconds = 60.0 * IDLE_MINUTES.check(idle_minutes)
        self._clock = clock
        self._lock = threading.Lock()
        self._quizzes: dict[str, _Quiz] = {}

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._quizzes)

    # -- teacher -------------------------------------------------------------------------------
    def start(self, questions: Sequence[Question]) -> TeacherPass:
        """A new quiz of ``questions``; its code is what students type.

        Raises
        ------
        QuizError
            No questions, too many, one without a right answer or two choices, or the board
            is full.
        """
        questions = tuple(questions)
        if not questions:
            raise QuizError("A quiz needs at least one question.")
        if len(questions) > self.max_questions:
            raise QuizError(f"A quiz holds at most {self.max_questions} questions; got "
                            f"{len(questions)}.")
        for q in questions:
            if q.answer is None or len(q.choices) < 2:
                raise QuizError(f"A question needs two choices or more and its right answer; "
                                f"{q.prompt!r} has {len(q.choices)} and answer {q.answer!r}.")
        with self._lock:
            self._expire()
            if len(self._quizzes) >= self.max_quizzes:
                raise QuizError(f"This server holds {self.max_quizzes} quizzes already; try "
                                "again when one has ended (a quiz ends after "
                                f"{self.idle_seconds / 60:g} minutes unused).")
            code = self._new_code()
            key = secrets.token_urlsafe(16)
            self._quizzes[code] = _Quiz(questions, key, self._clock(),
                                        tuple(q.hidden() for q in questions))
        return TeacherPass(code, key)

    def reveal(self, teacher: TeacherPass, revealed: bool = True) -> None:
        """Show (or hide again) the right answers to the quiz's students."""
        with self._lock:
            self._teachers(teacher).revealed = bool(revealed)

    def end(self, teacher: TeacherPass) -> None:
        """Forget the quiz now (its code stops working)."""
        with self._lock:
            self._teachers(teacher)
            del self._quizzes[teacher.code]

    def teacher_view(self, teacher: TeacherPass) -> TeacherView:
        """All answers, the right answers and the score of the teacher's quiz."""
        with self._lock:
            quiz = self._teachers(teacher)
            questions = quiz.questions
            counts = [[0] * len(q.choices) for q in questions]
            students, given, right = [], 0, 0
            for name, (_, answers) in quiz.students.items():
                mine = sum(questions[i].answer == choice for i, choice in answers.items())
                for i, choice in answers.items():
                    counts[i][choice] += 1
                given, right = given + len(answers), right + mine
                students.append(StudentResult(name, dict(answers), mine))
            return TeacherView(teacher.code, questions, tuple(students),
                               tuple(tuple(c) for c in counts), given,
                               right / given if given else 0.0, quiz.revealed)

    # -- students ------------------------------------------------------------------------------
    def join(self, code: str, name: str) -> StudentPass:
        """Join the quiz ``code`` as ``name`` (unique in the quiz, whatever the case).

        Raises
        ------
        QuizError
            Unknown or expired code, bad or taken name, or the quiz is full.
        """
        code, name = normal_code(code), normal_name(name)
        with self._lock:
            quiz = self._quiz(code)
            if any(other.casefold() == name.casefold() for other in quiz.students):
                raise QuizError(f"Someone called {name!r} has joined this quiz already; add "
                                "a letter to your name.")
            if len(quiz.students) >= self.max_students:
                raise QuizError(f"The quiz {code} is full ({self.max_students} students).")
            key = secrets.token_urlsafe(16)
            quiz.students[name] = (key, {})
        return StudentPass(code, name, key)

    def answer(self, student: StudentPass, question: int, choice: int) -> None:
        """Record (or change) ``student``'s answer to question ``question``.

        Raises
        ------
        QuizError
            Unknown quiz or student, or the answers are revealed already.
        ParameterError
            No such question or choice.
        """
        with self._lock:
            quiz, answers = self._students(student)
            if quiz.revealed:
                raise QuizError("The answers have been revealed; this quiz takes no more "
                                "answers.")
            question = Bound("the question number", 0, len(quiz.questions) - 1).check(question)
            options = len(quiz.questions[question].choices)
            answers[question] = Bound("the choice", 0, options - 1).check(choice)

    def student_view(self, student: StudentPass) -> StudentView:
        """The quiz as ``student`` sees it: own answers only; right answers once revealed."""
        with self._lock:
            quiz, answers = self._students(student)
            if quiz.revealed:
                questions = quiz.questions
                right = sum(questions[i].answer == c for i, c in answers.items())
            else:
                questions, right = quiz.hidden, None
            return StudentView(student.code, student.name, questions, dict(answers),
                               quiz.revealed, right)

    def is_open(self, code: str) -> bool:
        """Whether a quiz with this code is on the board (without using it)."""
        with self._lock:
            self._expire()
            return normal_code(code) in self._quizzes

    # -- under the lock ------------------------------------------------------------------------
    def _expire(self) -> None:
        now = self._clock()
        for code in [c for c, q in self._quizzes.items() if now - q.used > self.idle_seconds]:
            del self._quizzes[code]

    def _quiz(self, code: str) -> _Quiz:
        self._expire()
        quiz = self._quizzes.get(code)
        if quiz is None:
            raise QuizError(f"There is no quiz with the code {code!r} (codes have "
                            f"{CODE_LENGTH} characters; a quiz ends after "
                            f"{self.idle_seconds / 60:g} minutes unused).")
        quiz.used = self._clock()
        return quiz

    def _teachers(self, teacher: TeacherPass) -> _Quiz:
        quiz = self._quiz(teacher.code)
        if not secrets.compare_digest(quiz.teacher_key, teacher.key):
            raise QuizError(f"Only the teacher who started the quiz {teacher.code} can see "
                            "its results.")
        return quiz

    def _students(self, student: StudentPass) -> tuple[_Quiz, dict]:
        quiz = self._quiz(student.code)
        key, answers = quiz.students.get(student.name, ("", None))
        if answers is None or not secrets.compare_digest(key, student.key):
            raise QuizError(f"{student.name!r} has not joined the quiz {student.code}; join "
                            "it with its code and your name.")
        return quiz, answers

    def _new_code(self) -> str:
        while True:  # 28.6 million codes for at most 200 quizzes: a repeat is rare
            code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
            if code not in self._quizzes:
                return code
