"""template.yaml's family blocks are what scripts/generate_template.py writes from the catalogue.

The blocks (role, log group, dead-letter queue, function and rule, alarms of each family) are
written once, in the generator; tests/test_template.py checks what they say. These tests keep the
file in step with the generator, and leave the hand-written rest of the template alone.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from bucketwarden.catalogue import FAMILIES
from scripts.generate_template import (
    BEGIN,
    COMMAND,
    END,
    TEMPLATE,
    TemplateOutOfStep,
    camel,
    check,
    main,
    write,
)

# Resources of one family's block, by their logical-id suffix.
FAMILY_RESOURCES = (
    "Role",
    "LogGroup",
    "DeadLetterQueue",
    "DeadLetterQueuePolicy",
    "Function",
    "DeadLetterAlarm",
)


@pytest.fixture
def copy(tmp_path: Path) -> Path:
    """template.yaml, copied where a test may change it."""
    path = tmp_path / "template.yaml"
    path.write_text(TEMPLATE.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def region(text: str) -> str:
    return text[text.index(BEGIN) : text.index(END)]


def test_template_is_what_the_generator_writes() -> None:
    try:
        check()
    except TemplateOutOfStep as error:
        pytest.fail(str(error))


def test_every_family_block_lies_between_the_markers() -> None:
    text = TEMPLATE.read_text(encoding="utf-8")
    generated, outside = region(text), text.replace(region(text), "")
    for family in FAMILIES:
        for suffix in FAMILY_RESOURCES:
            declaration = f"\n  {camel(family)}{suffix}:\n"
            assert declaration in generated, declaration
            assert declaration not in outside, declaration


def test_an_edited_family_block_is_caught_and_written_back(copy: Path) -> None:
    original = copy.read_text(encoding="utf-8")
    edited = original.replace("Resource: !GetAtt LoggingLogGroup.Arn", 'Resource: "*"')
    assert region(edited) != region(original)
    copy.write_text(edited, encoding="utf-8")

    with pytest.raises(TemplateOutOfStep, match=f"run `{COMMAND}`"):
        check(copy)
    assert write(copy) is True
    assert copy.read_text(encoding="utf-8") == original
    assert write(copy) is False


def test_the_hand_written_rest_is_left_as_it_is(copy: Path) -> None:
    edited = copy.read_text(encoding="utf-8").replace(
        "Starts a BucketWarden sweep of every bucket", "Starts a sweep"
    )
    copy.write_text(edited, encoding="utf-8")

    check(copy)
    assert write(copy) is False
    assert copy.read_text(encoding="utf-8") == edited


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        (lambda text: text.replace(END + "\n", ""), "exactly once"),
        (lambda text: text.replace(BEGIN + "\n", ""), "exactly once"),
        (lambda text: text.replace(BEGIN + "\n", 2 * (BEGIN + "\n")), r"found 2"),
        (
            lambda text: text.replace(BEGIN, "# begin").replace(END, BEGIN).replace("# begin", END),
            "before",
        ),
    ],
    ids=["no end", "no begin", "two begins", "end first"],
)
def test_markers_that_are_missing_or_out_of_order_are_refused(
    copy: Path, change: Callable[[str], str], complaint: str
) -> None:
    broken = change(copy.read_text(encoding="utf-8"))
    copy.write_text(broken, encoding="utf-8")

    with pytest.raises(TemplateOutOfStep, match=complaint):
        check(copy)
    with pytest.raises(TemplateOutOfStep, match=complaint):
        write(copy)
    assert copy.read_text(encoding="utf-8") == broken


def test_command_line_checks_writes_and_refuses_unknown_arguments(
    copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--check"], copy) == 0
    copy.write_text(copy.read_text(encoding="utf-8").replace("Sid: DeadLetters", "Sid: Dlq"))

    assert main(["--check"], copy) == 1
    assert f"run `{COMMAND}`" in capsys.readouterr().err
    assert main([], copy) == 0
    assert "rewritten" in capsys.readouterr().out
    assert main(["--check"], copy) == 0
    assert main(["--write"], copy) == 2
    assert "Usage" in capsys.readouterr().err
