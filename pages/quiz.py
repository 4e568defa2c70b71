"""Class quiz: a teacher starts a quiz on the sidebar's model and reads out its code; students
join with the code and their name and answer questions the server drew from the model (which
image makes this unit fire more? where did the model look?). The teacher sees live results,
the right answers and the score; a student sees only their own answers."""
import streamlit as st

from ui.feedback import run_button, show_error
from ui.page import page_setup
from ui.presenter import controls
from ui.quiz import (join_form, question_maker, start_quiz, student_panel, student_pass,
                     teacher_panel, teacher_pass)
from ui.settings import KEPT
from ui.state import workbench
from ui.text import literal
from viz_core.features.activations import feature_map_layers
from viz_core.errors import VizError
from viz_core.runtime.plan import Plan, Step

COUNTS = (2, 4, 6, 8, 10)
ROLES = {"student": "Student", "teacher": "Teacher"}

page = page_setup(
    "Class quiz",
    "Check what the class understood: which of two images makes a unit fire more (the task "
    "Borowski et al., ICLR 2021, used to measure how well people understand units), and "
    "where the model looked for a class. The questions come from the sidebar's model, with "
    "the right answers computed.",
    needs="nothing",
)
# the role stays open in presenter mode too (a teacher at the projector picks Teacher); kept,
# not linked: a shared quiz link opens as a student
role = controls("Role", normal="plain", beside=True).radio(
    "I am", list(ROLES), format_func=ROLES.get, horizontal=True, key="quiz_role", **KEPT)

if role == "student":
    student = student_pass()
    if student is None:
        join_form()
    else:
        student_panel(student)
    st.stop()

teacher = teacher_pass()
if teacher is not None:
    teacher_panel(teacher)
    st.stop()

model = page.model
if model is None:
    st.info("Choose a model in the sidebar that loads, to draw the quiz's questions.")
    st.stop()
bench = workbench()
layers = [p for p in feature_map_layers(model.info) if "Conv" in model.info.layer(p).type]
last = model.info.last_conv_layer
columns = controls("Questions", normal="plain").columns(3)
# kept, not linked: the layer, count and draw name the questions, so a link holding them would
# let a student draw the same quiz as its teacher and read the right answers
layer = columns[0].selectbox("Units of the layer", layers,
                             index=layers.index(last) if last in layers else 0, key="quiz_layer",
                             help="The \"which image\" questions ask about units of this layer.",
                             **KEPT)
count = columns[1].select_slider("Questions", COUNTS, value=6, key="quiz_count", **KEPT)
seed = int(columns[2].number_input("Draw", 0, 10_000, 0, key="quiz_seed",
                                   help="Another number draws other units and images.",
                                   **KEPT))
st.caption(f"Questions on {literal(model.title)} and the sample images: "
           "\"which image\" and \"where\" in turn.")
# settings -> plan -> render: the same plan is asked whether the questions are ready, run by the
# queue (identical draws of several sessions share one job) and read back
drawing = Step(question_maker(bench.disk), (model, layer, count, seed))
plan = Plan((drawing,))
if not plan.ready(bench):
    run_button("Draw the questions", "Drawing quiz questions", "quiz_draw",
               lambda bar: plan.run(bench, bar), job_key=plan.key())
    st.stop()
try:
    questions = drawing.result(bench)
except VizError as exc:
    show_error(exc)
    st.stop()
if not questions:
    st.warning("These images give no question for this layer; try another layer.")
    st.stop()
st.caption(f"{len(questions)} questions are ready.")
if st.button("Start the quiz", type="primary", key="quiz_start") and start_quiz(questions):
    st.rerun()
