"""The `bucketwarden` command line.

Exit codes: 0 when the command ran (whatever it found), 2 on bad input or an error; `scan` and
`remediate` with --fail-on-findings exit 1 when anything is left noncompliant or failed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from rich.console import Console

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from bucketwarden.controls.base import Control

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_ERROR = 2

# `rollback --exempt-days`: how long the rollback's exemption lasts, by default and at most.
DEFAULT_EXEMPT_DAYS = 7
MAX_EXEMPT_DAYS = 365
REPORT_FORMATS = ("table", "json", "sarif", "html")
# The formats of `scan --standard`: a row per control of the standard.
STANDARD_FORMATS = ("table", "json")
# What --fail-on-findings fails on: drift left in place, or a check that could not be done.
FAILING_STATUSES = frozenset({"noncompliant", "failed"})


class CliError(Exception):
    """A problem to report in one line, exiting with EXIT_ERROR."""


def _quiet_runtime(verbose: bool) -> None:
    # Metrics and traces belong to CloudWatch and X-Ray; on a terminal they would bury the report.
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO" if verbose else "WARNING")
    warnings.filterwarnings("ignore", module="aws_lambda_powertools")


def use_endpoint(endpoint_url: str | None, region: str | None) -> None:
    """Point every AWS client at `endpoint_url` (an emulator) and pick the region."""
    from bucketwarden.aws import reset_clients
    from bucketwarden_tools.clients import reach_local_endpoints

    if region:
        os.environ["AWS_DEFAULT_REGION"] = region
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
        # An emulator accepts any key; a real profile is neither needed nor wanted here.
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "bucketwarden-local")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "bucketwarden-local")
    else:
        configured = os.environ.get("AWS_ENDPOINT_URL")
        if configured and not _is_endpoint(configured):
            raise CliError(f"AWS_ENDPOINT_URL={configured!r}: {ENDPOINT_EXPECTED}")
    reach_local_endpoints()
    reset_clients()  # made again, able to reach the endpoint


ENDPOINT_EXPECTED = "expected a URL such as http://127.0.0.1:5000"


def _is_endpoint(text: str) -> bool:
    from urllib.parse import urlsplit

    from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url

    parts = urlsplit(text)
    try:
        parts.port  # noqa: B018 (raises on a port that is not a number from 0 to 65535)
    except ValueError:
        return False
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return False
    # botocore's own test of the host, which it would otherwise fail on when making a client.
    return bool(is_valid_endpoint_url(text) or is_valid_ipv6_endpoint_url(text))


def _endpoint_url(text: str) -> str:
    """--endpoint-url: an http(s) URL with a host, checked before anything runs."""
    if not _is_endpoint(text):
        raise argparse.ArgumentTypeError(f"{ENDPOINT_EXPECTED}, got {text!r}")
    return text


def _endpoint_argument(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--endpoint-url",
        type=_endpoint_url,
        metavar="URL",
        help="AWS endpoint, e.g. http://127.0.0.1:5000 (moto)",
    )


def _read_event(path: Path) -> dict[str, Any]:
    from bucketwarden.events import EventRejected, parse_record

    try:
        raw: dict[str, Any] = json.loads(path.read_text())
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from error
    # ValueError: not UTF-8, not JSON, a number too long; RecursionError: nested too deep.
    except (ValueError, RecursionError) as error:
        raise CliError(f"{path} is not JSON: {error}") from error
    try:
        parse_record(raw)
    except EventRejected as rejected:
        raise CliError(f"{path}: {rejected.reason}") from rejected
    return raw


def _know_the_account() -> None:
    """Replay ignores records of other accounts as the deployed functions do; outside a stack
    (no ACCOUNT_ID), the account is the one of the credentials in use, asked once of STS."""
    if os.environ.get("ACCOUNT_ID", "").strip():
        return
    from bucketwarden.sweep import account_id

    os.environ["ACCOUNT_ID"] = account_id()


def cmd_replay(args: argparse.Namespace, console: Console, err: Console) -> int:
    from rich.markup import escape

    from bucketwarden_tools import stack
    from bucketwarden_tools.delivery import deliver
    from bucketwarden_tools.report import print_outcomes, write_json_lines

    event = _read_event(args.file)
    use_endpoint(args.endpoint_url, args.region)
    _know_the_account()
    if args.dry_run:
        os.environ["BUCKETWARDEN_DRY_RUN"] = "true"
    else:
        resources = stack.prepare(
            create_missing=bool(args.endpoint_url),
            audit_table=args.audit_table,
            idempotency_table=args.idempotency_table,
            topic_arn=args.topic_arn,
        )
        for note in resources.notes:
            err.print(f"[dim]note:[/] {escape(note)}")
        os.environ.update(resources.environment())
    outcomes = deliver(event, args.template)
    if args.json:
        write_json_lines(outcomes, sys.stdout)
    else:
        title = "dry run: nothing changed" if args.dry_run else None
        print_outcomes(outcomes, console, title)
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, console: Console, err: Console) -> int:
    from bucketwarden_tools.demo import run_demo

    return run_demo(console, as_json=args.json, template=args.template, accounts=args.accounts)


def _read_policy(path: Path, access_point: bool) -> Any:
    from bucketwarden.policy import PolicyError, analyze

    text = _policy_text(path)
    try:
        return analyze(_unwrapped_policy(text), "access-point" if access_point else "bucket")
    except PolicyError as error:
        raise CliError(f"{_source_name(path)} is not a policy: {error}") from error


def _source_name(path: Path) -> str:
    return "standard input" if str(path) == "-" else str(path)


def _policy_text(path: Path) -> str:
    """FILE's text, or standard input's for `-` (a pipe from `aws s3api get-bucket-policy`)."""
    try:
        return sys.stdin.read() if str(path) == "-" else path.read_text()
    except OSError as error:
        raise CliError(f"cannot read {path}: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise CliError(f"{_source_name(path)} is not a policy: not text") from error


def _unwrapped_policy(text: str) -> str:
    """The policy document itself when `text` is GetBucketPolicy's answer as the AWS CLI prints
    it ({"Policy": "<the document as a string>"}); anything else as given."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    if isinstance(parsed, dict) and set(parsed) == {"Policy"} and isinstance(parsed["Policy"], str):
        return parsed["Policy"]
    return text


def _print_verdict(verdict: Any, path: str, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    public = len(verdict.public_statement_indexes)
    headline = "[bold red]PUBLIC[/]" if verdict.public else "[bold green]not public[/]"
    console.print(
        f"{headline}  {escape(path)} ({verdict.context} policy): "
        f"{public} of {len(verdict.statements)} statements public"
    )
    table = Table(show_lines=True, expand=False)
    for column in ("statement", "effect", "public", "why"):
        table.add_column(column, overflow="fold")
    for result in verdict.statements:
        table.add_row(
            escape(result.label),
            result.effect,
            "[bold red]yes[/]" if result.public else "[green]no[/]",
            escape(result.summary),
        )
    console.print(table)


def cmd_policy_check(args: argparse.Namespace, console: Console, err: Console) -> int:
    verdict = _read_policy(args.file, args.access_point)
    if args.json:
        sys.stdout.write(json.dumps(verdict.as_dict()) + "\n")
    else:
        _print_verdict(verdict, _source_name(args.file), console)
    return EXIT_OK


def _mode_setting(text: str) -> tuple[str, str]:
    from bucketwarden.catalogue import CONTROL_IDS
    from bucketwarden.settings import Mode

    control_id, _, mode = text.partition("=")
    if control_id not in CONTROL_IDS or mode not in {m.value for m in Mode}:
        modes = "|".join(m.value for m in Mode)
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected CONTROL={modes} with CONTROL one of {', '.join(CONTROL_IDS)}"
        )
    return control_id, mode


def _account_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if count < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number of accounts, 1 or more")
    return count


def _parameter_overrides(items: list[str]) -> dict[str, str]:
    from bucketwarden_tools.parameters import ParameterError, parse_overrides

    try:
        return parse_overrides(items)
    except (ParameterError, ValueError) as error:  # ValueError: shlex's unclosed quotation
        raise CliError(f"--parameter-overrides: {error}") from error


def cmd_local(args: argparse.Namespace, console: Console, err: Console) -> int:
    from bucketwarden_tools.local.console import LiveConsole
    from bucketwarden_tools.local.system import LocalSystem, LocalSystemError
    from bucketwarden_tools.parameters import without_effect
    from bucketwarden_tools.routing import load_template

    try:
        system = LocalSystem(
            host=args.host,
            port=args.port,
            report=LiveConsole(args.json),
            modes=dict(args.mode),
            accounts=args.accounts,
            parameters=_parameter_overrides(args.parameter_overrides),
        )
    except LocalSystemError as error:
        raise CliError(str(error)) from error
    ineffective = (
        without_effect(system.parameters, load_template(system.template))
        if system.parameters
        else []
    )
    for name in ineffective:
        err.print(f"[dim]--parameter-overrides: {name} changes nothing in the local mode[/]")
    try:
        system.start()
    except LocalSystemError as error:
        system.stop()
        raise CliError(str(error)) from error
    stop = threading.Event()
    # Ctrl-C, or SIGTERM from a supervisor; set explicitly because a shell may start
    # background jobs with SIGINT ignored.
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        stop.wait()
        err.print("[dim]stopping...[/]")
    finally:
        system.stop()
    err.print("[dim]stopped.[/]")
    return EXIT_OK


# -- scan and remediate ----------------------------------------------------------------------


def _control_list(text: str) -> tuple[Control, ...]:
    from bucketwarden.sweep import controls_for

    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids:
        raise argparse.ArgumentTypeError("name at least one control")
    try:
        return controls_for(ids)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _named_buckets(s3: S3Client, names: list[str]) -> list[str]:
    """The named buckets, each checked to exist first (a typo must not pass as "all fine")."""
    from botocore.exceptions import ClientError

    from bucketwarden.aws import error_code

    for name in names:
        try:
            s3.head_bucket(Bucket=name)
        except ClientError as error:
            # HeadBucket has no body: S3 answers a missing bucket with a bare 404.
            if error_code(error) in {"404", "NoSuchBucket"}:
                raise CliError(f"no bucket named {name!r}") from error
            raise
    return sorted(set(names))


def _selected_controls(args: argparse.Namespace) -> tuple[Control, ...]:
    """--controls, else every control; naming buckets leaves the account's controls out."""
    from bucketwarden.catalogue import CONTROLS

    if args.controls is not None:
        # Repeated --controls may name a control twice: each runs once.
        return tuple(dict.fromkeys(args.controls))
    if args.buckets:
        return tuple(c for c in CONTROLS if c.scope == "bucket")
    return CONTROLS


def _check_audit_table(name: str | None) -> None:
    """An audit table that is not there would fail each fix after it is made: fail before."""
    from botocore.exceptions import ClientError

    from bucketwarden.aws import client, error_code

    if not name:
        return
    try:
        client("dynamodb").describe_table(TableName=name)
    except ClientError as error:
        if error_code(error) == "ResourceNotFoundException":
            raise CliError(f"audit table {name!r} not found") from error
        raise


@contextmanager
def _progress(err: Console, verb: str, total: int) -> Iterator[Callable[[int], None]]:
    """A progress bar on stderr when it is a terminal; nothing when piped or in a log."""
    if not sys.stderr.isatty() or err.is_dumb_terminal:
        yield lambda done: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = (
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err, transient=True) as progress:
        task = progress.add_task(f"{verb} buckets", total=total)
        yield lambda done: progress.update(task, completed=done)


def _html_renderer() -> Callable[[list[dict[str, Any]], str], str]:
    try:
        from bucketwarden_tools.reports_html import render_html
    except ModuleNotFoundError as error:
        if error.name != "bucketwarden_tools.reports_html":
            raise
        raise CliError("the HTML report is not part of this installation") from error
    return render_html


def _check_report_target(args: argparse.Namespace) -> None:
    """Fail before the sweep, not after it, when the report cannot be made."""
    if args.format == "html":
        _html_renderer()
    if args.output and not args.output.parent.is_dir():
        raise CliError(f"cannot write {args.output}: no folder {args.output.parent}")


@contextmanager
def _report_stream(path: Path | None) -> Iterator[TextIO]:
    if path is None:
        yield sys.stdout
        return
    try:
        stream = path.open("w", encoding="utf-8")
    except OSError as error:
        raise CliError(f"cannot write {path}: {error.strerror}") from error
    with stream:
        yield stream


def _write_report(
    args: argparse.Namespace,
    outcomes: list[dict[str, Any]],
    controls: tuple[Control, ...],
    *,
    console: Console,
    err: Console,
) -> None:
    from rich.markup import escape

    from bucketwarden_tools.report import print_report, summary_line, write_json_lines
    from bucketwarden_tools.sarif import write_sarif

    title = _title(args)
    with _report_stream(args.output) as stream:
        if args.format == "table":
            print_report(
                outcomes, Console(file=stream, width=150) if args.output else console, title
            )
        elif args.format == "json":
            write_json_lines(outcomes, stream)
        elif args.format == "sarif":
            write_sarif(outcomes, controls, stream)
        else:
            stream.write(_html_renderer()(outcomes, title))
    if args.format != "table" or args.output:
        # Machine formats and files keep stdout clean; the people watching get the totals here.
        err.print(escape(summary_line(outcomes)), highlight=False)


def _standard(text: str) -> str:
    from bucketwarden.standards import STANDARDS

    if text.lower() not in STANDARDS:
        known = ", ".join(STANDARDS)
        raise argparse.ArgumentTypeError(f"unknown standard {text!r}; known: {known}")
    return text.lower()


def _check_standard_format(args: argparse.Namespace) -> None:
    if getattr(args, "standard", None) and args.format not in STANDARD_FORMATS:
        raise CliError(f"--standard reports as {' or '.join(STANDARD_FORMATS)}, not {args.format}")


def _write_standard_report(
    args: argparse.Namespace, settings: Any, outcomes: list[dict[str, Any]], *, console: Console
) -> None:
    """One row per control of the standard, with the scan's outcomes counted per row."""
    from bucketwarden.catalogue import CONTROLS
    from bucketwarden_tools.standard_report import (
        print_standard,
        standard_rows,
        write_standard_json,
    )

    rows = standard_rows(args.standard, CONTROLS, settings, outcomes)
    with _report_stream(args.output) as stream:
        if args.format == "json":
            write_standard_json(rows, stream)
            return
        shown = Console(file=stream, width=150) if args.output else console
        print_standard(rows, shown, f"{args.standard.upper()} S3 controls: {_title(args)}")


def _note_off_controls(settings: Any, controls: tuple[Control, ...], err: Console) -> None:
    """The sweep leaves out controls whose mode is off: say so, or they pass unremarked."""
    from rich.markup import escape

    from bucketwarden.settings import Mode, mode_variable

    off = [c.id for c in controls if settings.mode(c.id, c.default_mode) is Mode.OFF]
    if off:
        settings_text = ", ".join(f"{mode_variable(c)}=off" for c in off)
        err.print(
            f"[dim]note:[/] not checked, off by their mode setting: "
            f"{escape(', '.join(off))} ({escape(settings_text)})"
        )


def _sweep(args: argparse.Namespace, console: Console, err: Console, fix: bool) -> int:
    from bucketwarden.catalogue import CONTROL_IDS
    from bucketwarden.settings import Settings
    from bucketwarden_tools.organization import selected_accounts

    args.format = args.format or "table"
    _check_standard_format(args)
    _check_report_target(args)
    if args.profile:
        os.environ["AWS_PROFILE"] = args.profile
    use_endpoint(args.endpoint_url, args.region)
    settings = replace(Settings.from_env(CONTROL_IDS), dry_run=not fix)
    # A dry run reads the table as the real run would (flap holds, recorded baselines, earlier
    # attempts), so that it shows what the real run will do; it writes nothing there.
    table = getattr(args, "audit_table", None)  # `scan` has no table: it judges the state only
    if table:
        settings = replace(settings, audit_table=table)
    if fix or table:
        _check_audit_table(settings.audit_table)
    if fix and not settings.audit_table:
        err.print("[dim]note:[/] no audit table (--audit-table): changes are not recorded")
    controls = _selected_controls(args)
    _note_off_controls(settings, controls, err)
    accounts = selected_accounts(args, _organizations)
    if accounts is None:
        outcomes = _sweep_account(args, settings, controls, err, fix)
    else:
        outcomes = _sweep_accounts(args, settings, controls, err, fix, accounts=accounts)
    if getattr(args, "standard", None):
        _write_standard_report(args, settings, outcomes, console=console)
    else:
        _write_report(args, outcomes, controls, console=console, err=err)
    failing = any(o["status"] in FAILING_STATUSES for o in outcomes)
    return EXIT_FINDINGS if args.fail_on_findings and failing else EXIT_OK


def _organizations() -> Any:
    from bucketwarden.aws import client

    return client("organizations")


def _sweep_account(
    args: argparse.Namespace,
    settings: Any,
    controls: tuple[Control, ...],
    err: Console,
    fix: bool,
    *,
    account: str | None = None,
    access: Any = None,
) -> list[dict[str, Any]]:
    """One account's outcomes: the caller's own (no `access`), or `account` through `access`."""
    from bucketwarden import services
    from bucketwarden.metrics import Metrics
    from bucketwarden.sweep import Sweep, Tally, list_bucket_regions

    # A scan or a dry run records nothing; `remediate` audits and counts its fixes.
    metrics = Metrics()
    store = services.audit_store(settings, metrics)
    reporter = services.reporter(settings, store, metrics, sweep=True)
    sweeper = Sweep(
        settings, controls, reporter=reporter, store=store, account=account, accounts=access
    )
    s3 = sweeper.client("s3")
    # S3 names each bucket's region in the listing, which saves a GetBucketLocation per bucket.
    regions = list_bucket_regions(s3)
    if account is not None and args.buckets:
        buckets = sorted(set(args.buckets) & regions.keys())  # checked in _named_in_accounts
    else:
        buckets = _named_buckets(s3, args.buckets) if args.buckets else sorted(regions)
    outcomes: list[dict[str, Any]] = []
    tally = Tally()
    verb = "remediating" if fix else "scanning"
    with _progress(err, f"{verb} {account or ''}".rstrip(), len(buckets)) as show:

        def collect(found: list[Any]) -> None:
            outcomes.extend(outcome.to_dict() for outcome in found)
            show(tally.subjects)

        sweeper.run(buckets, on_outcomes=collect, tally=tally, region=args.region, regions=regions)
    return outcomes


def _sweep_accounts(
    args: argparse.Namespace,
    settings: Any,
    controls: tuple[Control, ...],
    err: Console,
    fix: bool,
    *,
    accounts: tuple[str, ...],
) -> list[dict[str, Any]]:
    """Each account in turn, its outcomes together (the reports group them by account). An
    account whose role cannot be assumed is a failed line, and the others are swept."""
    from rich.markup import escape

    from bucketwarden.accounts import AccountAccess, MemberRoleUnavailable
    from bucketwarden.aws import client
    from bucketwarden_tools.organization import SESSION_NAME, unavailable_outcome

    sts = client("sts")
    home = str(sts.get_caller_identity()["Account"])
    access = AccountAccess(home, args.role_name, sts, SESSION_NAME)
    reachable: list[str] = []
    outcomes: list[dict[str, Any]] = []
    for account in accounts:
        try:
            access.reach(account)
            reachable.append(account)
        except MemberRoleUnavailable as unavailable:
            err.print(
                f"[bold yellow]warning:[/] account {account} not swept: "
                f"{escape(unavailable.reason)}"
            )
            outcomes.append(unavailable_outcome(account, unavailable.reason))
    if args.buckets:
        _named_in_accounts(args.buckets, reachable, access)
    for account in reachable:
        outcomes += _sweep_account(
            args, settings, controls, err, fix, account=account, access=access
        )
    order = {account: position for position, account in enumerate(accounts)}
    return sorted(outcomes, key=lambda o: order.get(str(o.get("account")), len(order)))


def _named_in_accounts(names: list[str], accounts: list[str], access: Any) -> None:
    """Every bucket named is in one of the accounts (a typo must not pass as "all fine")."""
    from bucketwarden.sweep import list_buckets

    found: set[str] = set()
    for account in accounts:
        found.update(list_buckets(access.client("s3", account, None)))
    missing = sorted(set(names) - found)
    if missing:
        raise CliError(f"no bucket named {missing[0]!r} in the accounts swept")


def _title(args: argparse.Namespace) -> str:
    if args.command == "remediate" and not args.dry_run:
        return "remediate"
    if args.command == "remediate":
        return "remediate --dry-run: the changes it would make, nothing changed"
    return "scan: read-only, nothing changed"


def cmd_scan(args: argparse.Namespace, console: Console, err: Console) -> int:
    return _sweep(args, console, err, fix=False)


def cmd_remediate(args: argparse.Namespace, console: Console, err: Console) -> int:
    return _sweep(args, console, err, fix=not args.dry_run)


SWEEP_EXIT_CODES = (
    "exit codes: 0 the sweep ran (whatever it found); 1 with --fail-on-findings, something is "
    "left noncompliant or failed; 2 bad input or an error"
)


def _sweep_arguments(command: argparse.ArgumentParser) -> None:
    """The selection and report options that `scan` and `remediate` share."""
    from bucketwarden_tools.organization import account_arguments

    _endpoint_argument(command)
    command.add_argument(
        "--region", help="region of the first calls (default: AWS_DEFAULT_REGION or us-east-1)"
    )
    command.add_argument("--profile", help="AWS profile of the shared config and credentials")
    command.add_argument(
        "--controls",
        type=_control_list,
        action="extend",
        metavar="ID[,ID...]",
        help="only these controls; repeat for more (default: every control)",
    )
    command.add_argument(
        "--bucket",
        dest="buckets",
        action="append",
        default=[],
        type=_nonblank,
        metavar="NAME",
        help="only this bucket; repeat for more (default: every bucket, the account and its "
        "access points)",
    )
    # No argparse default: a default would let `--format table --json` pass as one choice.
    report_format = command.add_mutually_exclusive_group()
    report_format.add_argument(
        "--format", choices=REPORT_FORMATS, help="report format (default: table)"
    )
    report_format.add_argument(
        "--json",
        dest="format",
        action="store_const",
        const="json",
        help="same as --format json",
    )
    command.add_argument("--output", type=Path, metavar="FILE", help="write the report to FILE")
    command.add_argument(
        "--fail-on-findings",
        action="store_true",
        help="exit 1 when anything is noncompliant or failed (an account not reached included)",
    )
    account_arguments(command, assumes_roles=True)


# -- rollback and history -------------------------------------------------------------------


def _connect(args: argparse.Namespace) -> None:
    if args.profile:
        os.environ["AWS_PROFILE"] = args.profile
    use_endpoint(args.endpoint_url, args.region)


def _audit_table(args: argparse.Namespace) -> str:
    """--audit-table, else AUDIT_TABLE, else the table that replay and local mode create."""
    from bucketwarden_tools.stack import DEFAULT_AUDIT_TABLE

    name = args.audit_table or os.environ.get("AUDIT_TABLE") or DEFAULT_AUDIT_TABLE
    try:
        _check_audit_table(name)
    except CliError as error:
        raise CliError(
            f"{error}: pass --audit-table NAME (the stack's output AuditTableName) or set "
            "AUDIT_TABLE"
        ) from error
    return name


def _nonblank(text: str) -> str:
    """A name or id: an empty one would select nothing, or everything, or reach AWS as is."""
    if not text.strip():
        raise argparse.ArgumentTypeError("must not be empty or blank")
    return text


def _control_id(text: str) -> str:
    """A control id, or `exemption`: the records of exemption changes (bucket tagging)."""
    from bucketwarden.catalogue import CONTROL_IDS
    from bucketwarden.exemptions import CHANGE_CONTROL

    known = (*CONTROL_IDS, CHANGE_CONTROL)
    if text not in known:
        raise argparse.ArgumentTypeError(f"unknown control {text!r}; known: {', '.join(known)}")
    return text


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number of at least 1")
    return int(text)


def _exempt_days(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= MAX_EXEMPT_DAYS:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected a whole number of days from 1 to {MAX_EXEMPT_DAYS}"
        )
    return int(text)


_DIFF_STYLES = (("+++", "bold"), ("---", "bold"), ("@@", "cyan"), ("+", "green"), ("-", "red"))


def _print_diff(now: Any, after: Any, console: Console) -> None:
    """The exact change, as a unified diff of the configuration as JSON."""
    import difflib

    from rich.text import Text

    lines = difflib.unified_diff(
        json.dumps(now, indent=2).splitlines(),
        json.dumps(after, indent=2).splitlines(),
        "now",
        "after the rollback",
        lineterm="",
    )
    for line in lines:
        style = next((s for prefix, s in _DIFF_STYLES if line.startswith(prefix)), "")
        console.print(Text(line, style=style), soft_wrap=True)


def _print_rollback(found: Any, done: Any, console: Console) -> None:
    from rich.markup import escape
    from rich.table import Table

    record = found.record
    if done is None:
        console.print("[bold]rollback --dry-run: the change it would make, nothing changed[/]")
    item = record.item
    console.print(
        escape(
            f"audit record {record.audit_id}: {record.names()}, fixed at {item.get('fix_time')} "
            f"(found by {item.get('found_by')}, after a change by "
            f"{item.get('actor') or 'an unknown principal'})"
        )
    )
    for sibling in found.siblings:
        console.print(
            escape(
                f"also undone (the same write of the {record.control.surface}): "
                f"{sibling.control.id}, audit record {sibling.audit_id}"
            )
        )
    exemption = found.exemption
    if exemption is not None and exemption.changed:
        tags = Table(
            title=escape(
                f"exemption tags on bucket {exemption.bucket}, written before the restore"
            ),
            expand=False,
        )
        for column in ("tag", "now", "after the rollback"):
            tags.add_column(column, overflow="fold")
        for key, old, new in exemption.changes():
            tags.add_row(escape(key), escape(old or "(none)"), escape(new or "(removed)"))
        console.print(tags)
    surface = Table(title=escape(f"{record.control.surface} of {record.subject}"), expand=False)
    for column in ("now", "after the rollback"):
        surface.add_column(column, overflow="fold")
    after = done.restored if done else found.target.expected
    describe = record.control.describe
    surface.add_row(escape(describe(found.now)), escape(describe(after)))
    console.print(surface)
    _print_diff(found.now, after, console)
    for warning in found.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}")
    if done is not None:
        _print_done(found, done, console)


def _print_done(found: Any, done: Any, console: Console) -> None:
    from rich.markup import escape

    records = ", ".join(done.rollback_ids.values())
    console.print(
        f"[bold green]rolled back[/]: {escape(found.record.control.surface)} read back and "
        f"verified; audit record {escape(records)}"
    )
    if found.exemption is not None:
        console.print(
            escape(
                f"BucketWarden leaves bucket {found.exemption.bucket} alone for "
                f"{', '.join(r.control.id for r in found.records)} while the exemption tags stay; "
                "delete them (or take the control ids out of the exempt tag) to let it manage "
                "the bucket again"
            )
        )


def cmd_rollback(args: argparse.Namespace, console: Console, err: Console) -> int:
    from rich.markup import escape

    from bucketwarden.aws import client
    from bucketwarden.catalogue import CONTROL_IDS
    from bucketwarden.settings import Settings
    from bucketwarden_tools import rollback
    from bucketwarden_tools.report import write_json_lines
    from bucketwarden_tools.stack import DEFAULT_MAC_KEY

    _connect(args)
    settings = Settings.from_env(CONTROL_IDS)
    mac_key = args.mac_key or settings.audit_mac_key or DEFAULT_MAC_KEY
    settings = replace(settings, audit_mac_key=mac_key)
    table = _audit_table(args)
    try:
        found, done = rollback.run(
            client("dynamodb"),
            table,
            args.audit_id,
            settings,
            force=args.force,
            dry_run=args.dry_run,
            exempt_days=args.exempt_days,
            role_name=args.role_name,
        )
    except rollback.RollbackError as error:
        message = str(error)
        if error.force_helps and "--force" not in message:
            message += " (--force rolls back anyway)"
        raise CliError(message) from error
    if args.json:
        write_json_lines(rollback.as_json(found, done), sys.stdout)
        for warning in found.warnings:
            err.print(f"[bold yellow]warning:[/] {escape(warning)}")
    else:
        _print_rollback(found, done, console)
    return EXIT_OK


def _history_table(records: list[dict[str, Any]]) -> Any:
    from rich.markup import escape
    from rich.table import Table

    from bucketwarden_tools.audit_history import when
    from bucketwarden_tools.report import STATUS_STYLES, change

    table = Table(title="audit records, newest first", show_lines=True, expand=False)
    for column in ("recorded (UTC)", "audit id"):
        table.add_column(column, no_wrap=True)
    for column in ("subject", "control", "status", "by", "before → after"):
        table.add_column(column, overflow="fold")
    for record in records:
        status = str(record.get("status"))
        table.add_row(
            escape(when(record)[:19].replace("T", " ")),
            escape(str(record.get("audit_id"))),
            escape(str(record.get("bucket") or "-")),
            escape(str(record.get("control") or "-")),
            f"[{STATUS_STYLES.get(status, 'magenta')}]{escape(status)}[/]",
            escape(f"{record.get('found_by', '?')}: {record.get('actor') or 'unknown'}"),
            "\n".join(
                [escape(change(record))]
                + [f"[yellow]warning:[/] {escape(str(w))}" for w in record.get("warnings") or []]
            ),
        )
    return table


def cmd_history(args: argparse.Namespace, console: Console, err: Console) -> int:
    from itertools import islice

    from bucketwarden.aws import client
    from bucketwarden_tools import audit_history
    from bucketwarden_tools.organization import of_accounts, selected_accounts
    from bucketwarden_tools.report import write_json_lines

    _connect(args)
    table = _audit_table(args)
    dynamodb = client("dynamodb")
    accounts = selected_accounts(args, _organizations)
    if args.bucket:
        found = audit_history.bucket_records(dynamodb, table, args.bucket, args.control)
    else:
        found = iter(audit_history.all_records(dynamodb, table, args.control))
    records = list(islice(of_accounts(found, accounts), args.limit))
    if args.json:
        write_json_lines(records, sys.stdout)
    elif records:
        console.print(_history_table(records))
    else:
        console.print("no audit records")
    return EXIT_OK


def _audit_arguments(command: argparse.ArgumentParser) -> None:
    _endpoint_argument(command)
    command.add_argument("--region", help="AWS region (default: AWS_DEFAULT_REGION or us-east-1)")
    command.add_argument("--profile", help="AWS profile of the shared config and credentials")
    command.add_argument(
        "--audit-table",
        type=_nonblank,
        metavar="NAME",
        help="the stack's audit table, output AuditTableName (default: AUDIT_TABLE, else "
        "bucketwarden-audit as replay and local mode make it)",
    )
    command.add_argument("--json", action="store_true", help="one JSON object per line")


def _audit_commands(commands: Any) -> None:
    """`rollback` and `history`: the commands that read the audit table."""
    from bucketwarden_tools.organization import account_arguments

    rollback = commands.add_parser(
        "rollback",
        help="put a fixed configuration back as its audit record says it was",
        description=(
            "Read the audit record AUDIT_ID of a fix (remediated, or pending), exempt the bucket "
            "from the control with "
            "tags (every other tag kept) until --exempt-days from today, then restore the "
            "configuration from before the fix "
            "exactly, deleting what was absent, and read it back. Refused (exit code 2) when the "
            "restore would open the bucket (make it public, turn Block Public Access off, or "
            "grant another account), when the configuration "
            "changed since the fix, or when the record was rolled back already: --force "
            "overrides all three. --dry-run prints the change, makes none."
        ),
    )
    rollback.add_argument("audit_id", type=_nonblank, metavar="AUDIT_ID")
    _audit_arguments(rollback)
    rollback.add_argument("--dry-run", action="store_true", help="print the change; make none")
    rollback.add_argument(
        "--mac-key",
        type=_nonblank,
        metavar="KEY",
        help="the KMS key that verifies audit records, output AuditMacKeyArn (default: "
        "AUDIT_MAC_KEY, else alias/bucketwarden-audit-mac as replay and local mode make it)",
    )
    rollback.add_argument(
        "--force",
        action="store_true",
        help="roll back although the restore opens the bucket (public, Block Public Access "
        "off, or a grant to another account: the refusal names what), the configuration changed "
        "since the fix (overwrites the change) or the record was rolled back already",
    )
    rollback.add_argument(
        "--exempt-days",
        type=_exempt_days,
        default=DEFAULT_EXEMPT_DAYS,
        metavar="N",
        help=f"the exemption tags end N days from today (bucketwarden:exempt-until; 1 to "
        f"{MAX_EXEMPT_DAYS}, default {DEFAULT_EXEMPT_DAYS}); BucketWarden fixes the bucket "
        "again after that",
    )
    rollback.add_argument(
        "--role-name",
        type=_nonblank,
        default="OrganizationAccountAccessRole",
        metavar="NAME",
        help="for a fix made in a member account of an organization (its audit record names "
        "the account): the role assumed there with your credentials (default %(default)s, "
        "which AWS Organizations makes in the accounts it creates)",
    )
    rollback.set_defaults(run=cmd_rollback)

    history = commands.add_parser(
        "history",
        help="list audit records, newest first",
        description=(
            "List the audit table's records, newest first: a bucket's (its index) or every "
            "record (a scan), optionally of one control only, of some accounts only (--accounts, "
            "--organization: the hub's table names each record's account). Status `pending`: a "
            "fix recorded before it was made whose event was dead-lettered before its result "
            "was known."
        ),
    )
    account_arguments(history, assumes_roles=False)
    history.add_argument(
        "--bucket",
        type=_nonblank,
        metavar="NAME",
        help="only this bucket's records (or an account id's, or an access point ARN's)",
    )
    history.add_argument(
        "--control",
        type=_control_id,
        metavar="ID",
        help="only this control's records (exemption: the exemption changes)",
    )
    history.add_argument("--limit", type=_positive, metavar="N", help="at most N records")
    _audit_arguments(history)
    history.set_defaults(run=cmd_history)


def build_parser() -> argparse.ArgumentParser:
    from bucketwarden_tools.routing import DEFAULT_TEMPLATE
    from bucketwarden_tools.stack import DEFAULT_AUDIT_TABLE, DEFAULT_IDEMPOTENCY_TABLE

    parser = argparse.ArgumentParser(
        prog="bucketwarden",
        description="Keep S3 buckets at a security baseline: detect drift, fix it, report it.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show the service's logs")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    replay = commands.add_parser(
        "replay",
        help="handle one CloudTrail event as the deployed functions would",
        description=(
            "Route FILE (an EventBridge event or a bare CloudTrail record) with the rules of "
            "template.yaml and run the Lambda handlers it reaches against the endpoint (or AWS). "
            "Against an endpoint, missing audit/idempotency tables and topic are created."
        ),
    )
    replay.add_argument("file", type=Path, metavar="FILE")
    _endpoint_argument(replay)
    replay.add_argument("--region", help="AWS region (default: AWS_DEFAULT_REGION or us-east-1)")
    replay.add_argument("--dry-run", action="store_true", help="evaluate only; change nothing")
    replay.add_argument("--json", action="store_true", help="one JSON object per outcome")
    replay.add_argument("--audit-table", default=DEFAULT_AUDIT_TABLE, help="%(default)s")
    replay.add_argument(
        "--idempotency-table", default=DEFAULT_IDEMPOTENCY_TABLE, help="%(default)s"
    )
    replay.add_argument("--topic-arn", help="SNS topic for notifications")
    replay.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help=argparse.SUPPRESS)
    replay.set_defaults(run=cmd_replay)

    local = commands.add_parser(
        "local",
        help="run the whole service on an embedded AWS emulator",
        description=(
            "Serve an emulated AWS endpoint where S3 configuration calls raise the CloudTrail "
            "events S3 would log; the rules of template.yaml deliver them to the functions, "
            "which fix what drifted. Point any AWS client at the endpoint; Ctrl-C stops."
        ),
    )
    local.add_argument("--host", default="127.0.0.1", help="address to listen on (%(default)s)")
    local.add_argument("--port", type=int, default=4566, help="port to listen on (%(default)s)")
    local.add_argument("--json", action="store_true", help="one JSON object per line")
    local.add_argument(
        "--mode",
        action="append",
        default=[],
        type=_mode_setting,
        metavar="CONTROL=MODE",
        help="a control's mode (remediate, notify, off); repeat for more controls",
    )
    local.add_argument(
        "--accounts",
        type=_account_count,
        default=1,
        metavar="N",
        help="emulate an organization of N accounts: this hub and N-1 member accounts, with "
        "the member roles and forwarders (default 1: one account)",
    )
    local.add_argument(
        "--parameter-overrides",
        nargs="+",
        action="extend",
        default=[],
        metavar="NAME=VALUE",
        help="template.yaml parameters, as sam deploy takes them (FlapThreshold=5 "
        "PublicAclMode=notify, or ParameterKey=Name,ParameterValue=Value): each sets the "
        "functions' variables the template sets from it; checked before anything starts",
    )
    local.set_defaults(run=cmd_local)

    demo = commands.add_parser(
        "demo",
        help="make buckets drift on an embedded AWS and watch them fixed",
        description=(
            "Start the local system, make buckets drift through real S3 calls as a person "
            "would, and print drift, outcome, notification and drift-to-fix latency."
        ),
    )
    demo.add_argument("--json", action="store_true", help="one JSON object per outcome")
    demo.add_argument("--template", type=Path, default=DEFAULT_TEMPLATE, help=argparse.SUPPRESS)
    demo.add_argument(
        "--accounts",
        type=_account_count,
        default=1,
        metavar="N",
        help="play it in an organization of N accounts too: the same drift in each, fixed by "
        "one hub (default 1: one account)",
    )
    demo.set_defaults(run=cmd_demo)

    scan = commands.add_parser(
        "scan",
        help="judge every bucket with every control; change nothing",
        description=(
            "Read every bucket (each in its own region), the account's Block Public Access and "
            "every access point, and judge them with the controls. Read-only: nothing is "
            "changed, audited or notified. Findings show the fix that remediate would make. "
            "--accounts or --organization sweep several accounts: the caller's own with its "
            "credentials, the others with --role-name assumed there; an account whose role "
            "cannot be assumed is reported (failed) and the others are swept; the reports "
            "group the outcomes by account."
        ),
        epilog=SWEEP_EXIT_CODES,
    )
    _sweep_arguments(scan)
    scan.add_argument(
        "--standard",
        type=_standard,
        metavar="NAME",
        help="report by the controls of a standard (fsbp: AWS Foundational Security Best "
        "Practices, S3.1 to S3.25): one row each, the BucketWarden controls that check it and "
        "how (fixed, detected only) or why none does, and the scan's outcomes of those "
        "controls counted (passed, failed, exempted, not checked); table or --json (one object "
        "per row)",
    )
    scan.set_defaults(run=cmd_scan)

    remediate = commands.add_parser(
        "remediate",
        help="fix what every control finds wrong, per its mode",
        description=(
            "Sweep as scan does and fix each finding whose control is in remediate mode "
            "(MODE_<CONTROL> variables; default remediate), verified by reading again. "
            "--dry-run prints the exact changes (before → after) and makes none. --accounts "
            "and --organization as for scan."
        ),
        epilog=SWEEP_EXIT_CODES,
    )
    _sweep_arguments(remediate)
    remediate.add_argument("--dry-run", action="store_true", help="print the changes; make none")
    remediate.add_argument(
        "--audit-table",
        type=_nonblank,
        metavar="NAME",
        help="DynamoDB table for the audit records of the changes (default: AUDIT_TABLE); a "
        "dry run reads it as the real run would (flap holds, recorded baselines) and writes "
        "nothing",
    )
    remediate.set_defaults(run=cmd_remediate)

    _audit_commands(commands)

    policy = commands.add_parser("policy", help="judge policy documents")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True, metavar="COMMAND")
    check = policy_commands.add_parser(
        "check",
        help="is a policy public in S3's meaning? with the reasons",
        description=(
            "Judge the policy document in FILE (- for standard input) as S3 does for Block "
            "Public Access: public or not, and for each public statement the principal and the "
            "condition that make it so. The output of `aws s3api get-bucket-policy` "
            '({"Policy": "..."}) is read as the policy it holds.'
        ),
    )
    check.add_argument(
        "file", type=Path, metavar="FILE", help="a policy document; - reads standard input"
    )
    check.add_argument("--json", action="store_true", help="one JSON object: public, reasons")
    check.add_argument(
        "--access-point",
        action="store_true",
        help="judge it as an access point policy (s3:DataAccessPointArn does not restrict)",
    )
    check.set_defaults(run=cmd_policy_check)
    return parser


def _one_line(error: Exception) -> str:
    """An error's text on one line (botocore's validation errors span several), markup escaped."""
    from rich.markup import escape

    return escape(" ".join(line.strip() for line in str(error).splitlines() if line.strip()))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # Piped output (CI logs, files) gets room for the tables instead of rich's 80 columns.
    console = Console(width=None if sys.stdout.isatty() else 150)
    err = Console(stderr=True)
    _quiet_runtime(args.verbose)
    from botocore.exceptions import BotoCoreError, ClientError

    from bucketwarden.settings import ConfigError
    from bucketwarden_tools.routing import TemplateError

    try:
        return int(args.run(args, console, err))
    except (CliError, ConfigError, TemplateError) as error:
        err.print(f"[bold red]error:[/] {_one_line(error)}", soft_wrap=True)
    except (BotoCoreError, ClientError) as error:
        err.print(f"[bold red]AWS error:[/] {_one_line(error)}", soft_wrap=True)
    except BrokenPipeError:
        # The reader stopped early (`| head`): no traceback, and no flush to a closed pipe at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return EXIT_ERROR


if __name__ == "__main__":
    sys.exit(main())
