"""docs/security.md's threat model names the tests that show each defence: they must exist."""

from __future__ import annotations

import re

from tests.conftest import ROOT

NAMED_TEST = re.compile(r"`(?:(test_\w+)\.py)?(?:::)?(test_\w+)?`")


def test_every_test_the_threat_model_names_exists() -> None:
    text = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    sources = {path.stem: path.read_text(encoding="utf-8") for path in ROOT.glob("tests/*.py")}
    named = [(module, test) for module, test in NAMED_TEST.findall(text) if module or test]
    assert len(named) > 20
    for module, test in named:
        if module:
            assert module in sources, f"docs/security.md names {module}.py, which is not in tests/"
        if test and test not in sources:  # a module named alone is a test file, not a test
            where = [sources[module]] if module else sources.values()
            assert any(f"def {test}(" in source for source in where), f"no test named {test}"
