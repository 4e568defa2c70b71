"""Overview: the model card, the image as the model sees it, and the top-5 predictions."""
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from ui import notes
from ui.charts import plotly_chart
from ui.classes import top_title
from ui.page import page_setup
from ui.presenter import presenter_on
from ui.state import workbench
from ui.text import literal
from viz_core.models.predict import predict

START_HERE = (  # page, the question it answers
    ("pages/feature_maps.py", "What does each layer see in this image?"),
    ("pages/filters.py", "What pattern does each filter look for?"),
    ("pages/heatmaps.py", "Where is the evidence for a class?"),
    ("pages/lime.py", "Which regions carried the decision?"),
    ("pages/compare.py", "Which explanation can I trust here?"),
    ("pages/sanity.py", "Does the explanation depend on what the model learned?"),
    ("pages/dataset.py", "How does the model do on a whole folder, and does it cheat?"),
    ("pages/atlas.py", "Which images make each unit fire?"),
    ("pages/concepts.py", "What did the model find in a class's images?"),
    ("pages/lesson.py", "How is one number of a layer computed?"),
    ("pages/quiz.py", "What did the class understand? (a quiz)"),
)



def start_here() -> None:
    # A class's guide; in presenter mode the teacher guides: folded, so that the model card
    # and the picture come first on a projector's screen.
    box = (st.expander("Start here: which page answers which question",
                       icon=":material/signpost:") if presenter_on()
           else st.container(border=True))
    with box:
        st.markdown("**Start here** · 1. pick a model in the sidebar (the demo model works "
                    "offline) · 2. pick or upload an image · 3. open the page for your question:")
        for column, (path, question) in zip(st.columns(4) + st.columns(4) + st.columns(4), START_HERE):
            column.page_link(path, help=question)
            column.caption(question)


page = page_setup("Overview", intro=start_here)
model, image = page.model, page.image
info = model.info
view = model.view(image)
notes.show(notes.overview(model), where=page.note)

card, picture = st.columns([3, 2])
with card:
    st.subheader(literal(model.title))
    h, w, c = info.input_shape
    kind_text = {
        "softmax": f"softmax over {info.num_classes} classes",
        "binary": "one sigmoid unit: class 1 = p, class 0 = 1 - p",
        "multilabel": f"{info.num_classes} independent sigmoid units (multi-label)",
        "linear": f"{info.num_classes} linear scores",
    }[info.output_kind]
    a, b, d = st.columns([3, 2, 2])  # the input size is the longest value
    a.metric("Input", f"{h}×{w}×{c}")
    b.metric("Weights", f"{info.params / 1e6:.2f} M" if info.params >= 1e5 else f"{info.params:,}")
    d.metric("Conv layers", len(info.conv_layers))
    st.caption(f"Output: {kind_text} · preprocessing: `{model.preprocessing}` · "
               f"last conv layer: `{info.last_conv_layer}`")
    table = pd.DataFrame(
        [{"layer": entry.path, "type": entry.type,
          "output shape": "×".join("?" if d is None else str(d) for d in entry.output_shape),
          "weights": entry.params, "conv": "✓" if entry.conv else ""}
         for entry in info.layers])
    st.dataframe(table, hide_index=True, height=320, width="stretch")

with picture:
    st.subheader("As the model sees it")
    resized = ("the model's input size" if tuple(image.size) == (w, h)
               else f"resized to {w}×{h}")
    st.image(view.display, caption=f"{literal(image.name)}: {image.size[0]}×{image.size[1]} px, {resized}",
             width="stretch")

shown = min(5, len(model.labels))  # a two-class model has two predictions, not five
st.subheader(top_title(shown).capitalize())
result = workbench().run(predict, model, (view,), top=shown)[0]
labels = [f"{c.label} ({c.class_index})" for c in result.top][::-1]
probs = [c.probability for c in result.top][::-1]
figure = go.Figure(go.Bar(x=probs, y=labels, orientation="h", marker_color="#3b6fb6",
                          text=[f"{p:.1%}" for p in probs], textposition="auto",
                          hovertemplate="%{y}: %{x:.2%}<extra></extra>"))
figure.update_layout(height=60 + 40 * len(labels), margin=dict(l=10, r=10, t=10, b=10),
                     xaxis=dict(range=[0, 1], tickformat=".0%", title="probability"))
plotly_chart(figure, width="stretch")
