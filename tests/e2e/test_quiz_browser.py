"""The class quiz in real browsers: a teacher session starts a quiz, three student sessions
(separate browser contexts, so separate Streamlit sessions) join with its code and answer; the
teacher's live results show the 3 answers and the score without a click, and no student's page
shows another student's name or answer, not even after switching to the teacher's view; no
session's link holds the code, a name, an answer or the draw."""
from __future__ import annotations

import re
from urllib.parse import unquote, urlparse

import pytest

from tests.e2e.test_browser import FIRST, QUERY, WAIT_MS, assert_no_crash, settle

pytestmark = pytest.mark.e2e

STUDENTS = ("Aaliyah", "Bastien", "Chiara")


def radio_option(page, option: str, nth: int = 0) -> None:
    """Click ``option`` of the ``nth`` radio group that offers it."""
    page.locator('[data-testid="stRadio"]').filter(
        has=page.get_by_text(option, exact=True)).nth(nth).get_by_text(
        option, exact=True).click()


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def test_a_teacher_and_three_students_play_a_quiz(browser, server, artifacts):
    contexts = []

    def new_page():
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        page.goto(f"{server}/quiz?{QUERY}image={FIRST}")
        settle(page)
        assert_no_crash(page)
        return page

    try:
        teacher = new_page()
        radio_option(teacher, "Teacher")
        settle(teacher)
        teacher.get_by_role("button", name="Draw the questions").click()
        teacher.get_by_role("button", name="Start the quiz").wait_for(timeout=WAIT_MS)
        settle(teacher)
        teacher.get_by_role("button", name="Start the quiz").click()
        heading = teacher.get_by_text(re.compile(r"^Quiz code: [A-Z2-9]{5}$"))
        heading.wait_for(timeout=WAIT_MS)
        code = heading.inner_text().removeprefix("Quiz code: ").strip()
        settle(teacher)
        first_line = teacher.get_by_text(re.compile(r"^Q1: right answer ")).inner_text()
        right = re.match(r"Q1: right answer (Image [AB])", first_line)[1]
        wrong = "Image B" if right == "Image A" else "Image A"

        students = {}
        for name, choice in zip(STUDENTS, (right, right, wrong)):
            page = new_page()
            page.get_by_role("textbox", name="Quiz code").fill(code.lower())
            page.get_by_role("textbox", name="Your name").fill(name)
            page.get_by_role("button", name="Join").click()
            page.get_by_text(re.compile(rf"^You are {name} in the quiz {code}")).wait_for()
            settle(page)
            radio_option(page, choice)  # question 1 (the role radio offers no images)
            page.get_by_text(f"Saved: {choice}", exact=True).wait_for()
            settle(page)
            assert_no_crash(page)
            students[name] = page

        # the teacher's results refresh on their own: no click, no reload
        metrics = teacher.locator('[data-testid="stMetric"]')
        teacher.wait_for_function(
            """() => {
                const text = [...document.querySelectorAll('[data-testid=stMetric]')]
                    .map(m => m.innerText.replace(/\\s+/g, ' ')).join(' | ');
                return text.includes('Students 3') && text.includes('Answers 3');
            }""", timeout=60_000)
        shown = " | ".join(re.sub(r"\s+", " ", m.inner_text()) for m in metrics.all())
        assert "Students 3" in shown and "Answers 3" in shown and "Score 67%" in shown, shown
        teacher_text = main_text(teacher)
        assert all(name in teacher_text for name in STUDENTS)
        teacher.screenshot(path=str(artifacts / "quiz_teacher.png"), full_page=True)
        for page in (teacher, *students.values()):  # a copied link gives nothing away
            link = unquote(page.url).casefold()
            assert "quiz" not in urlparse(page.url).query and code.casefold() not in link, link
            assert not any(n.casefold() in link for n in STUDENTS) and "image a" not in link

        for name, page in students.items():
            others = [n for n in STUDENTS if n != name]
            text = main_text(page)
            assert not any(other in text for other in others), (name, text)
            assert "Right answer:" not in text and "✓" not in text
            if name == STUDENTS[0]:
                page.screenshot(path=str(artifacts / "quiz_student.png"), full_page=True)
            # the teacher's side of this session is its own: it never shows this quiz's results
            radio_option(page, "Teacher")
            settle(page)
            text = main_text(page)
            assert code not in text and not any(n in text for n in STUDENTS), (name, text)
            assert_no_crash(page)
    finally:
        for context in contexts:
            context.close()
