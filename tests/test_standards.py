"""The FSBP S3 map: every Security Hub S3 control once, covered as the controls themselves say.

Which control covers a row is computed from the controls' `fsbp` ids and how from their
`fixable` and mode, never written in the table; docs/fsbp.md is generated from it.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bucketwarden.catalogue import CONTROLS
from bucketwarden.controls.base import Control, Evaluation, State
from bucketwarden.settings import Mode, Settings
from bucketwarden.standards import (
    BY_ID,
    DETECTED_ONLY,
    FIXED,
    S3_CONTROLS,
    Lifecycle,
    coverage,
    unknown_ids,
)
from scripts.generate_fsbp_doc import DOC, DocOutOfStep, check, main, rendered, table


class Probe(Control[Any]):
    """A control made for the test, declaring what a new control would."""

    id = "probe"
    family = "versioning"
    title = "probe"
    surface = "probe"
    trigger_events = ()
    read_actions = ()
    write_actions = ()
    fsbp = ("S3.7",)

    def read(self, s3: Any, bucket: str) -> State:
        return None

    def evaluate(self, state: State, settings: Settings) -> Evaluation:
        return Evaluation(True, "fine")

    def apply(self, s3: Any, bucket: str, desired: State) -> None:
        raise AssertionError("never written")


def row_of(rows: list[Any], row_id: str) -> Any:
    return next(row for row in rows if row.row.id == row_id)


def test_every_s3_control_from_1_to_25_once_in_order() -> None:
    assert [row.id for row in S3_CONTROLS] == [f"S3.{n}" for n in range(1, 26)]
    for row in S3_CONTROLS:
        assert (row.severity is None) == (row.lifecycle is Lifecycle.UNASSIGNED), row


def test_every_fsbp_id_a_control_declares_is_in_the_table() -> None:
    assert unknown_ids(CONTROLS) == {}
    declared = {i for c in CONTROLS for i in c.fsbp}
    assert declared <= set(BY_ID)


def test_a_typo_in_a_control_is_found() -> None:
    class Typo(Probe):
        id = "typo"
        fsbp = ("S3.1", "S3-2")

    assert unknown_ids([Typo()]) == {"typo": ["S3-2"]}


def test_coverage_comes_from_the_controls_fsbp_ids() -> None:
    """A new control covers its row with no edit of the table, and only its row."""
    without = row_of(coverage(CONTROLS), "S3.7")
    assert without.by == ()
    assert "not a security baseline" in str(without.why_not)

    rows = coverage((*CONTROLS, Probe()))

    covered = row_of(rows, "S3.7")
    assert [(c.control, c.how) for c in covered.by] == [("probe", FIXED)]
    assert covered.why_not is None
    assert all("probe" not in [c.control for c in r.by] for r in rows if r.row.id != "S3.7")


def test_every_control_with_fsbp_ids_covers_those_rows_and_every_row_says_why_not() -> None:
    rows = coverage(CONTROLS)
    for row in rows:
        expected = [c.id for c in CONTROLS if row.row.id in c.fsbp]
        assert [c.control for c in row.by] == expected
        assert (row.why_not is None) == bool(row.by), row


def test_how_follows_fixable_and_mode() -> None:
    class DetectOnly(Probe):
        fixable = False

    class Notify(Probe):
        default_mode = Mode.NOTIFY

    assert row_of(coverage([DetectOnly()]), "S3.7").by[0].how == DETECTED_ONLY
    assert row_of(coverage([Notify()]), "S3.7").by[0].how == f"{DETECTED_ONLY} (mode notify)"
    # The stack's mode decides when it is set: remediate fixes, off checks nothing.
    settings = Settings.from_env(("probe",))
    remediate = replace(settings, modes={"probe": Mode.REMEDIATE})
    off = replace(settings, modes={"probe": Mode.OFF})
    assert row_of(coverage([Notify()], remediate), "S3.7").by[0].how == FIXED
    assert row_of(coverage([Probe()], off), "S3.7").by[0].how == "not checked (mode off)"
    # A control that cannot fix stays detect only whatever its mode, unless off.
    assert row_of(coverage([DetectOnly()], remediate), "S3.7").by[0].how == DETECTED_ONLY
    detect_off = replace(settings, modes={"probe": Mode.OFF})
    assert (
        row_of(coverage([DetectOnly()], detect_off), "S3.7").by[0].how == "not checked (mode off)"
    )


def test_mfa_delete_and_data_events_are_detected_only() -> None:
    rows = coverage(CONTROLS)
    for row_id, control in (
        ("S3.20", "mfa-delete"),
        ("S3.22", "object-level-logging"),
        ("S3.23", "object-level-logging"),
    ):
        assert [(c.control, c.how) for c in row_of(rows, row_id).by] == [
            (control, DETECTED_ONLY)
        ], row_id


def test_unknown_standard_names_the_known_ones() -> None:
    with pytest.raises(KeyError, match="unknown standard 'cis'; known: fsbp"):
        coverage(CONTROLS, standard="cis")


def test_row_as_json() -> None:
    found = row_of(coverage(CONTROLS), "S3.4").to_dict()
    assert found["lifecycle"] == "retired"
    assert found["covered_by"] == []
    assert found["why_not"].startswith("retired by AWS")


# -- docs/fsbp.md -------------------------------------------------------------------------------


def test_docs_table_is_what_the_generator_writes() -> None:
    try:
        check()
    except DocOutOfStep as error:
        pytest.fail(str(error))


def test_docs_table_has_a_line_per_row() -> None:
    lines = table().splitlines()[2:]
    assert [line.split(" | ")[0].removeprefix("| ") for line in lines] == [
        row.id for row in S3_CONTROLS
    ]


def test_out_of_step_doc_is_found_and_rewritten(tmp_path: Path) -> None:
    copy = tmp_path / "fsbp.md"
    copy.write_text(DOC.read_text().replace("S3.14", "S3.41"), encoding="utf-8")
    assert main(["--check"], copy) == 1
    assert main([], copy) == 0
    assert copy.read_text() == DOC.read_text() == rendered(DOC.read_text())
    assert main(["--check"], copy) == 0
    assert main(["--bogus"], copy) == 2
