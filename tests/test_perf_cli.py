"""The shipped perf command's own pieces that need no browser: its widget app renders every
kind it names, and its arguments say what is missing."""
import pytest
from streamlit.testing.v1 import AppTest

from pipelines import perf

# the AppTest accessor that finds each kind's widget (the floor has none)
ACCESSOR = {"selectbox": "selectbox", "multiselect": "multiselect", "segmented_control": "segmented_control",
            "pills": "pills", "radio": "radio", "toggle": "toggle", "slider": "slider", "text_input": "text_input",
            "date_input": "date_input", "dataframe": "dataframe", "code": "code"}


@pytest.mark.parametrize("kind", perf.WIDGET_KINDS)
def test_widget_app_draws_its_one_widget_and_the_chart(kind):
    at = AppTest.from_string(perf.WIDGET_APP, default_timeout=60)
    at.query_params["kind"] = kind
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == f"Widget {kind}" and len(at.get("plotly_chart")) == 1
    if kind in ACCESSOR:
        assert len(getattr(at, ACCESSOR[kind])) == 1, kind
    if kind == "markdown_table":
        assert str(at.markdown[0].value).count("\n") == 21  # header, rule and 20 rows


def test_perf_needs_a_warehouse_unless_it_measures_widgets(capsys):
    with pytest.raises(SystemExit) as exc:
        perf.main([])
    assert exc.value.code == 2 and "--db is required (or --widgets)" in capsys.readouterr().err
