"""ui.charts: presenter mode's chart text, scaled like the rest of the page."""
import plotly.graph_objects as go

from ui.charts import DEFAULT_CHART_PX, presenter_figure
from ui.presenter import PRESENTER_SCALE


def test_explicit_sizes_and_height_grow_and_the_original_stays():
    figure = go.Figure(go.Heatmap(z=[[0, 1]], textfont=dict(size=13),
                                  colorbar=dict(title=dict(text="ρ", font=dict(size=16)))))
    figure.update_layout(height=440, title=dict(text="t", font=dict(size=14)),
                         legend=dict(font=dict(size=11)))
    shown = presenter_figure(figure, scale=1.25)
    assert shown.layout.title.font.size == 17.5  # 14 x 1.25
    assert shown.layout.legend.font.size == 15  # 11 x 1.25 = 13.75, raised to 12 x 1.25
    assert shown.data[0].textfont.size == 16.25
    assert shown.data[0].colorbar.title.font.size == 20
    assert shown.layout.height == 550
    assert shown.layout.font.size is None  # default text follows Streamlit's theme
    assert figure.layout.title.font.size == 14 and figure.layout.height == 440


def test_per_point_sizes_and_figures_without_sizes_are_left_alone():
    figure = go.Figure(go.Scatter(x=[0, 1], y=[0, 1], mode="text", text=["a", "b"],
                                  textfont=dict(size=[10, 20])))
    shown = presenter_figure(figure)
    assert list(shown.data[0].textfont.size) == [10, 20]
    assert shown.layout.height is None
    assert DEFAULT_CHART_PX * PRESENTER_SCALE == 15
