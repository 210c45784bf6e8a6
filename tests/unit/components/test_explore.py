from kubecycle.components.explore.core import build_eda_report
from kubecycle.components.validate.core import clean


def test_report_profiles_the_data_and_shows_target_and_correlations(penguins, tmp_path):
    result = clean(penguins, "species")
    eda = build_eda_report(result.frame, result.contract, tmp_path / "eda.html")
    text = eda.html_path.read_text()
    assert eda.rows_profiled == len(result.frame)
    assert "Target species" in text and "Spearman correlations" in text
    assert "Cleaning (training rows)" not in text  # no counts given, no section


def test_report_shows_the_cleaning_counts(penguins, tmp_path):
    result = clean(penguins, "species")
    cleaning = {"rows_before": 266, "rows_after": 259,
                "outliers": {"method": "iqr", "action": "drop", "flagged": 7, "dropped": 7,
                             "by_column": {"bill_length_mm": 4, "body_mass_g": 3}},
                "label_noise": {"method": "none", "action": "report", "flagged": 0, "dropped": 0,
                                "by_column": {}}}
    text = build_eda_report(result.frame, result.contract, tmp_path / "eda.html",
                            cleaning=cleaning).html_path.read_text()
    section = text[text.index("Cleaning (training rows)"):]
    assert "266 training rows before, 259 after" in section
    assert "bill_length_mm: 4, body_mass_g: 3" in section and "<td>iqr</td>" in section
