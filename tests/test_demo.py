"""The README's demo runs end to end (one short epoch here; the real run is the README's)."""

import matplotlib

matplotlib.use("Agg")

from sccalmflow import demo


def test_demo_writes_table_and_figures(tmp_path, capsys):
    table = demo.main(
        ["--held-out", "B", "--max-epochs", "1", "--n-cells", "60", "--out", str(tmp_path)]
    )
    assert list(table["method"]) == ["CaLMFlow", "control", "additive"]
    assert table["r2_top100_de"].between(0, 1).all()
    assert (table["e_distance_pca"] >= 0).all()
    out = capsys.readouterr().out
    assert "r2_top100_de" in out and "additive" in out
    written = sorted(p.name for p in tmp_path.iterdir())
    assert written == [
        "demo_results.csv",
        "embedding_B.png",
        "history_B.png",
        "mean_expression_B.png",
    ]
