"""Edges of the restructure: where the tooling finds the template, and what an audit store or
integrity check without a table says when asked to do what only a table allows."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bucketwarden import integrity
from bucketwarden.catalogue import CONTROL_IDS
from bucketwarden.settings import Settings
from bucketwarden_tools.routing import TemplateError, find_template, load_template
from tests.helpers import audit_store

ROOT = Path(__file__).resolve().parents[1]


def test_the_template_of_the_checkout_one_works_in_is_found_from_below_it(tmp_path: Path) -> None:
    (tmp_path / "functions").mkdir()
    (tmp_path / "template.yaml").write_text("Resources: {}\n")
    deeper = tmp_path / "docs" / "notes"
    deeper.mkdir(parents=True)

    assert find_template(deeper) == tmp_path / "template.yaml"


def test_a_template_without_functions_beside_it_is_not_taken(tmp_path: Path) -> None:
    (tmp_path / "template.yaml").write_text("Resources: {}\n")

    # Outside any checkout: the checkout this package was installed from.
    assert find_template(tmp_path) == ROOT / "template.yaml"


def test_a_missing_template_says_where_to_run_from(tmp_path: Path) -> None:
    with pytest.raises(TemplateError, match="run from a BucketWarden checkout"):
        load_template(tmp_path / "template.yaml")


def no_table_settings() -> Settings:
    return replace(Settings.from_env(CONTROL_IDS), audit_table=None, audit_mac_key="alias/k")


def test_a_store_without_a_table_refuses_to_name_one() -> None:
    store = audit_store(no_table_settings())

    with pytest.raises(RuntimeError, match="no audit table"):
        _ = store.table_name
    with pytest.raises(RuntimeError, match="no audit table"):
        _ = store.dynamodb


def test_records_cannot_be_verified_without_a_table() -> None:
    store = audit_store(no_table_settings())

    with pytest.raises(RuntimeError, match="verifying audit records needs the table"):
        store.integrity.why_untrusted({"audit_id": {"S": "a"}})


def test_a_key_without_a_kms_client_is_refused_rather_than_left_untagged() -> None:
    with pytest.raises(RuntimeError, match="no KMS client"):
        integrity.sealed(None, {"audit_id": {"S": "a"}}, "alias/k")
