"""docs/costs.md: every formula figure it prints is what the formula in
benchmarks/cost_table.py computes (so the document cannot drift from its own arithmetic)."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "costs.md").read_text()
CONFIGS = {"opus alone": ("opus", None), "sonnet + opus advisor": ("sonnet", "opus"),
           "haiku + opus advisor": ("haiku", "opus")}  # fmt: skip


@pytest.fixture(scope="module")
def table() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cost_table", ROOT / "benchmarks/cost_table.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cost_table"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_the_table_formula_columns_are_what_the_formulas_compute(table: ModuleType) -> None:
    rows = 0
    for line in DOC.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells[0] not in CONFIGS or len(cells) < 7:
            continue
        executor, advisor = CONFIGS[cells[0]]
        assert cells[1] == f"${table.published_code(executor, advisor):.4f}"
        assert cells[2] == f"${table.published(executor, advisor):.4f}"
        rows += 1
    assert rows == 3


def test_the_published_code_figures_and_savings_in_the_text(table: ModuleType) -> None:
    code = [table.published_code(*CONFIGS[c]) for c in CONFIGS]
    assert [round(v, 4) for v in code] == [1.6875, 0.5220, 0.3042]
    text = " ".join(DOC.split())
    assert "**$1.6875, $0.5220 and $0.3042**" in text
    saved = [table.savings(*CONFIGS[c], table.published_code) for c in list(CONFIGS)[1:]]
    assert (
        f"**{saved[0]:.1%}** (sonnet + opus) and **{saved[1]:.1%}** (haiku + opus)".replace(
            "%", " %"
        )
        in text
    )
    ours = [table.savings(*CONFIGS[c], table.published) for c in list(CONFIGS)[1:]]
    assert f"(savings {ours[0]:.1%} / {ours[1]:.1%})".replace("%", " %") in text
    reading = [table.published(*CONFIGS[c]) for c in CONFIGS]
    assert "$1.6875, $0.5625 and $0.3150" in text
    assert [round(v, 4) for v in reading] == [1.6875, 0.5625, 0.3150]


def test_the_article_figures_are_named_as_not_following_from_its_code(table: ModuleType) -> None:
    text = " ".join(DOC.split())
    assert re.search(r"\$0\.4590 / \$0\.2244 and savings of 72\.8 % / 86\.7 %: those figures do "
                     r"not follow from its own code", text)  # fmt: skip
    printed = {0.4590, 0.2244}
    assert not printed & {round(table.published_code(*CONFIGS[c]), 4) for c in CONFIGS}
