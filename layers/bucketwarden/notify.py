"""SNS notifications: one publish per reported outcome, with a message per kind of subscriber.

`MessageStructure=json` lets one publish carry readable text for email, the AWS Chatbot custom
notification format for Slack (Chatbot subscribes over HTTPS) and machine JSON for SQS/Lambda.
A sweep publishes one summary instead, in the same three forms.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import fields, replace
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from bucketwarden.aws import error_code
from bucketwarden.exemptions import CHANGE_CONTROL, CHANGE_EVENTS
from bucketwarden.grants import describe
from bucketwarden.outcome import Outcome, Status
from bucketwarden.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient

    from bucketwarden.summary import SweepSummary

SUBJECT_LIMIT = 100  # SNS refuses longer subjects

_HEADLINES = {
    Status.REMEDIATED: "BucketWarden remediated {control} on {subject}",
    Status.NONCOMPLIANT: "BucketWarden found {control} drift on {subject}",
    Status.EXEMPTED: "BucketWarden found exempted {control} drift on {subject}",
    Status.FAILED: "BucketWarden failed to remediate {control} on {subject}",
}
# How a headline names what `outcome.bucket` holds, by the control's scope.
_SCOPE_NOUNS = {"bucket": "bucket", "account": "account", "access-point": "access point"}
_EMOJI = {
    Status.REMEDIATED: ":white_check_mark:",
    Status.NONCOMPLIANT: ":warning:",
    Status.EXEMPTED: ":information_source:",
    Status.FAILED: ":rotating_light:",
}


# -- values an outsider wrote ------------------------------------------------------------------
#
# Bucket names, policy text in reasons, actors, tag values and the event's fields are written by
# whoever made the call. Shown to people they are escaped and capped, so that they can neither
# steer the message (mention a channel, link elsewhere, fake a line) nor take it over SNS's limit.

# The outcome's fields that can hold what an outsider wrote (the rest are the service's own).
OUTSIDER_FIELDS = (
    "bucket",
    "reason",
    "actor",
    "source_ip",
    "event_time",
    "event_name",
    "event_id",
    "account",
    "region",
    "escalation",
)
# At most this many characters of one such value in a chat message, and in an email.
CHAT_FIELD_LIMIT = 500
EMAIL_FIELD_LIMIT = 4000
# Slack (through AWS Chatbot) reads `&`, `<` and `>` as its own syntax (`<!channel>`, `<@U123>`,
# `<http://x|y>`); its escapes for them are HTML's. Its markdown has no escape character, so
# markup characters become look-alikes, and a word joiner keeps `@` from starting a mention.
_CHAT_ESCAPES = str.maketrans(
    {
        "&": "&amp;",
        "<": "&lt;",
        ">": "&gt;",
        "`": "\u02cb",
        "*": "\u2217",
        "_": "\u02cd",
        "~": "\u223c",
        "@": "@\u2060",
    }
)


def capped(text: str, limit: int) -> str:
    """`text`, cut to `limit` characters with a note of how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit} more characters)"


def one_line(text: str) -> str:
    """Line breaks and other control or format characters (bidi overrides) become spaces, so a
    value cannot start a line of its own that looks like the message's."""
    return "".join(ch if ch.isprintable() else " " for ch in text)


def chat_text(value: object, limit: int = CHAT_FIELD_LIMIT) -> str:
    """`value` as Slack shows it literally: one line, capped, its markup and mentions escaped."""
    return one_line(capped(str(value), limit)).translate(_CHAT_ESCAPES)


def email_value(value: object, limit: int = EMAIL_FIELD_LIMIT) -> str:
    """`value` for the plain-text email: one line, capped."""
    return one_line(capped(str(value), limit))


def _shown(outcome: Outcome, show: Any) -> Outcome:
    """The outcome with every value an outsider could have written passed through `show`."""
    values: dict[str, Any] = {
        name: None if getattr(outcome, name) is None else show(getattr(outcome, name))
        for name in OUTSIDER_FIELDS
    }
    return replace(outcome, **values, warnings=[show(w) for w in outcome.warnings])


def _noun_and_name(outcome: Outcome) -> tuple[str, str]:
    noun = _SCOPE_NOUNS.get(outcome.scope, outcome.scope)
    name = str(outcome.bucket)
    if outcome.scope == "access-point":
        name = name.rsplit("/", 1)[-1]  # the name from the access point ARN
    return noun, name


def _labelled_subject(outcome: Outcome) -> str:
    noun, name = _noun_and_name(outcome)
    return f"{noun.capitalize()}: {name}"


def _located(outcome: Outcome) -> str:
    """ "Bucket: NAME (REGION)", and the account it is in when known ("..., account ID")."""
    where = ", ".join(
        part for part in (outcome.region, outcome.account and f"account {outcome.account}") if part
    )
    return _labelled_subject(outcome) + (f" ({where})" if where else "")


def subject_name(outcome: Outcome) -> str:
    """ "bucket NAME", "account 123456789012" or "access point NAME"."""
    return " ".join(_noun_and_name(outcome))


def headline(outcome: Outcome) -> str:
    if outcome.escalation:
        return outcome.escalation
    if outcome.control == CHANGE_CONTROL:
        return change_headline(outcome)
    template = _HEADLINES.get(outcome.status, "BucketWarden {control} on {subject}")
    return template.format(control=outcome.control, subject=subject_name(outcome))


def subject(outcome: Outcome) -> str:
    return _sns_subject(headline(outcome))


def _sns_subject(line: str) -> str:
    # SNS refuses subjects with line breaks or other control characters.
    printable = "".join(ch if ch.isprintable() else " " for ch in line)
    text = printable.encode("ascii", "replace").decode()
    return text if len(text) <= SUBJECT_LIMIT else text[: SUBJECT_LIMIT - 3] + "..."


def _who(outcome: Outcome) -> str:
    actor = outcome.actor or "an unknown principal"
    where = f" from {outcome.source_ip}" if outcome.source_ip else ""
    when = f" at {outcome.event_time}" if outcome.event_time else ""
    call = f" ({outcome.event_name}, event {outcome.event_id})" if outcome.event_name else ""
    return f"{actor}{where}{when}{call}"


def _exempt_howto(outcome: Outcome, settings: Settings) -> list[str]:
    key = settings.exempt_tag_key
    if outcome.scope == "account":
        return [
            "Account-level settings have no tags: to stop this control, set its mode parameter",
            "to notify or off in the BucketWarden stack.",
        ]
    where = "the bucket" if outcome.scope == "bucket" else "the bucket the access point serves"
    return [
        f"To exempt this {_noun_and_name(outcome)[0]} from this control, tag {where}:",
        f"  {key} = {outcome.control}",
        f"  {settings.exempt_reason_key} = <why it must differ>",
        f"  {settings.exempt_until_key} = <YYYY-MM-DD, optional end date>",
    ]


def rollback_command(outcome: Outcome, settings: Settings | None = None) -> str | None:
    """The command that undoes a fix, for a fix with an audit record (None otherwise).

    It names the stack's audit table, which people running it may not know by heart, and the
    stack's region when the function knows it: the CLI takes the region from the shell, and a
    stack is per region, so from a shell set to another region the table would not be found.
    """
    if outcome.status is not Status.REMEDIATED or not outcome.audit_id:
        return None
    command = f"bucketwarden rollback {outcome.audit_id}"
    if settings and settings.audit_table:
        command += f" --audit-table {settings.audit_table}"
    if settings and settings.region:
        command += f" --region {settings.region}"
    return command


def _undo_howto(outcome: Outcome, settings: Settings) -> list[str]:
    if outcome.status is not Status.REMEDIATED:
        return []
    command = rollback_command(outcome, settings)
    if command is None:
        return [
            "To undo this fix, put the 'Before' configuration back and exempt the bucket as "
            "above, or BucketWarden will correct it again.",
        ]
    if outcome.scope == "account":
        keeps = (
            "Set the control's mode parameter to notify or off first, or BucketWarden will "
            "correct it again."
        )
    else:
        keeps = (
            "It first exempts the bucket from this control with the tags above, so BucketWarden "
            "leaves it; delete the tags to let BucketWarden manage it again."
        )
    return [
        f"To undo this fix (audit record {outcome.audit_id}), put the 'Before' configuration "
        "back with:",
        f"  {command}",
        keeps,
    ]


def email_text(outcome: Outcome, settings: Settings) -> str:
    outcome = _shown(outcome, email_value)
    lines = [
        headline(outcome) + ".",
        "",
        f"What was wrong: {outcome.reason}",
        _located(outcome),
        f"Control: {outcome.control} (mode {outcome.mode})",
        f"Outcome: {outcome.status.value}",
        f"Changed by: {_who(outcome)}",
        f"Found by: {outcome.found_by}",
        *(f"Warning: {warning}" for warning in outcome.warnings),
        "",
        "Before:",
        json.dumps(outcome.before, indent=2, sort_keys=True),
        "After:",
        json.dumps(outcome.after, indent=2, sort_keys=True),
    ]
    if outcome.time_to_remediate_ms is not None:
        lines += ["", f"Time from the change to the fix: {outcome.time_to_remediate_ms} ms"]
    lines += ["", *_exempt_howto(outcome, settings), *_undo_howto(outcome, settings)]
    if outcome.audit_id:
        lines += ["", f"Audit record: {outcome.audit_id}"]
    return "\n".join(lines)


def _account_line(outcome: Outcome) -> str:
    """The chat card's account line (an organization's cards come from many accounts)."""
    return f"*Account:* {outcome.account}\n" if outcome.account else ""


def chatbot_message(outcome: Outcome, settings: Settings | None = None) -> dict[str, Any]:
    outcome = _shown(outcome, chat_text)
    description = (
        f"*What was wrong:* {outcome.reason}\n{_account_line(outcome)}"
        f"*Changed by:* {_who(outcome)}\n"
        f"*Outcome:* {outcome.status.value} (mode {outcome.mode})"
    )
    key = (settings or Settings()).exempt_tag_key
    next_steps = [f"Exempt with tags `{key}={outcome.control}` and `{key}-reason`"]
    command = rollback_command(outcome, settings)
    undo = [f"Undo: `{command}`"] if command else []
    title = f"{_EMOJI.get(outcome.status, '')} {headline(outcome)}".strip()
    return _chat_card(
        outcome,
        title,
        description,
        first_steps=next_steps,
        last_steps=undo,
        event_type=outcome.status.value,
    )


def _chat_card(
    outcome: Outcome,
    title: str,
    description: str,
    *,
    first_steps: list[str],
    last_steps: list[str],
    event_type: str,
) -> dict[str, Any]:
    """An AWS Chatbot custom notification of one (already shown) outcome; its audit record is
    named between `first_steps` and `last_steps`."""
    record = [f"Audit record `{outcome.audit_id}`"] if outcome.audit_id else []
    return {
        "version": "1.0",
        "source": "custom",
        "id": outcome.audit_id or outcome.event_id or "",
        "content": {
            "textType": "client-markdown",
            "title": title,
            "description": description,
            "nextSteps": [*first_steps, *record, *last_steps],
        },
        "metadata": {
            "threadId": f"{outcome.bucket}/{outcome.control}",
            "summary": headline(outcome),
            "eventType": event_type,
            "relatedResources": [_resource_arn(outcome)],
        },
    }


def _resource_arn(outcome: Outcome) -> str:
    if outcome.scope == "bucket":
        return f"arn:aws:s3:::{outcome.bucket}"
    if outcome.scope == "account":
        return f"arn:aws:iam::{outcome.bucket}:root"
    return str(outcome.bucket)  # an access point's subject is its ARN


def by_protocol(machine: str, email: str, chatbot: dict[str, Any]) -> dict[str, str]:
    """One SNS message per kind of subscriber (`MessageStructure: json`)."""
    return {
        "default": machine,
        "email": email,
        "email-json": machine,
        "sqs": machine,
        "lambda": machine,
        "https": json.dumps(chatbot),
    }


def machine_message(outcome: Outcome, settings: Settings) -> dict[str, Any]:
    """The outcome itself, and for a fix with an audit record the command that undoes it."""
    data = outcome.to_dict()
    command = rollback_command(outcome, settings)
    if command:
        data["rollback_command"] = command
    return data


# SNS refuses a message over 256 KB, and with MessageStructure json every protocol's copy counts.
MESSAGE_LIMIT = 256 * 1024
LEFT_OUT = "left out: the message would exceed SNS's 256 KB (the audit record has it)"


# When a message would not fit even without before and after, every text of the outcome (the
# machine copy's too) is cut to these lengths in turn. At the last, even every field that long
# in the characters that take the most bytes once escaped stays under the limit (tested).
FALLBACK_FIELD_LIMITS = (2000, 200)
FALLBACK_WARNINGS = 5


def message(outcome: Outcome, settings: Settings) -> dict[str, str]:
    """The message for each protocol; what would not fit SNS's limit is left out or cut.

    Before and after can each be a bucket policy of 20 KB, repeated in every copy (and non-ASCII
    text takes six bytes a character once escaped), so a large policy alone can take a message
    over the limit: they go first. A long reason (a policy's text) or tag value goes next.
    """
    found = _message(outcome, settings)
    if _fits(found):
        return found
    outcome = replace(outcome, before=LEFT_OUT, after=LEFT_OUT)
    found = _message(outcome, settings)
    for limit in FALLBACK_FIELD_LIMITS:
        if _fits(found):
            break
        found = _message(_cut(outcome, limit), settings)
    return found


def _fits(found: dict[str, str]) -> bool:
    return len(json.dumps(found).encode()) <= MESSAGE_LIMIT


def _cut(outcome: Outcome, limit: int) -> Outcome:
    """Every text of the outcome cut to `limit` characters, and only its first warnings."""
    texts: dict[str, Any] = {
        field.name: capped(value, limit)
        for field in fields(outcome)
        if type(value := getattr(outcome, field.name)) is str
    }
    warnings = [capped(w, limit) for w in outcome.warnings[:FALLBACK_WARNINGS]]
    return replace(outcome, **{**texts, "warnings": warnings})


def _message(outcome: Outcome, settings: Settings) -> dict[str, str]:
    machine = json.dumps(machine_message(outcome, settings), sort_keys=True, default=str)
    if outcome.control == CHANGE_CONTROL:
        email, chatbot = change_email_text(outcome, settings), change_chatbot_message(outcome)
        return by_protocol(machine, email, chatbot)
    return by_protocol(machine, email_text(outcome, settings), chatbot_message(outcome, settings))


# -- exemption changes: a bucket tagging call granted, changed or removed an exemption --------


def _change_verb(outcome: Outcome) -> str:
    if outcome.event_name not in CHANGE_EVENTS:
        return "found"  # in effect on a drift, never recorded before
    if outcome.after is None:
        return "removed"
    return "granted" if outcome.before is None else "changed"


def change_headline(outcome: Outcome) -> str:
    """ "BucketWarden: exemption granted (not honoured) on bucket X by ARN"."""
    where = subject_name(outcome)
    if outcome.status in {Status.FAILED, Status.SKIPPED}:
        return f"BucketWarden could not read the exemption tags of {where}"
    by = f" by {outcome.actor}" if outcome.actor else ""
    # Before the actor, whose ARN can be long: a subject is cut at 100 characters.
    verdict = " (not honoured)" if outcome.status is Status.NONCOMPLIANT else ""
    return f"BucketWarden: exemption {_change_verb(outcome)}{verdict} on {where}{by}"


_HONOURED = {
    Status.EXEMPTED: "yes: drift of these controls is reported, not fixed",
    Status.NONCOMPLIANT: "no: the bucket is fixed as any other (see why above)",
    Status.COMPLIANT: "nothing to honour: the bucket has no exemption now",
}


def _change_lines(outcome: Outcome, show: Callable[[object], str]) -> list[str]:
    """The change's lines; `outcome` already shown, and the grants (tag values) shown here."""
    return [
        f"What changed: {outcome.reason}",
        f"Changed by: {_who(outcome)}",
        f"Exemption before: {show(describe(outcome.before))}",
        f"Exemption now: {show(describe(outcome.after))}",
        f"Honoured: {_HONOURED.get(outcome.status, outcome.status.value)}",
        *(f"Warning: {warning}" for warning in outcome.warnings),
    ]


def change_email_text(outcome: Outcome, settings: Settings) -> str:
    outcome = _shown(outcome, email_value)
    key = settings.exempt_tag_key
    lines = [
        headline(outcome) + ".",
        "",
        _located(outcome),
        *_change_lines(outcome, email_value),
        "",
        f"Every change of the tags {key}, {settings.exempt_reason_key} and "
        f"{settings.exempt_until_key} is audited and notified. To end the exemption, delete them.",
    ]
    if outcome.audit_id:
        lines += ["", f"Audit record: {outcome.audit_id}"]
    return "\n".join(lines)


def change_chatbot_message(outcome: Outcome) -> dict[str, Any]:
    outcome = _shown(outcome, chat_text)
    description = _account_line(outcome) + "\n".join(
        f"*{line.replace(': ', ':* ', 1)}" for line in _change_lines(outcome, chat_text)
    )
    steps = ["Check that the exemption is wanted; delete its tags to end it"]
    title = f":label: {headline(outcome)}"
    event_type = f"exemption-{_change_verb(outcome)}"
    return _chat_card(
        outcome, title, description, first_steps=steps, last_steps=[], event_type=event_type
    )


# SNS refuses a Publish over its rate with its modelled ThrottledException (HTTP 429, code
# "Throttled"), and a KMS-encrypted topic with KMSThrottling: neither is among the errors
# botocore retries. A refused Publish delivered nothing, so it is safe to send again.
THROTTLED_CODES = frozenset({"Throttled", "KMSThrottling"})
PUBLISH_ATTEMPTS = 5
PUBLISH_BACKOFF_SECONDS = 0.1


def _publish(sns: SNSClient, **request: Any) -> None:
    """Publish, retrying SNS's throttling with exponential backoff and full jitter."""
    for attempt in range(1, PUBLISH_ATTEMPTS + 1):
        try:
            sns.publish(**request)
            return
        except ClientError as error:
            if error_code(error) not in THROTTLED_CODES or attempt == PUBLISH_ATTEMPTS:
                raise
        time.sleep(random.uniform(0, PUBLISH_BACKOFF_SECONDS * 2**attempt))


def publish(sns: SNSClient, topic_arn: str, outcome: Outcome, settings: Settings) -> None:
    _publish(
        sns,
        TopicArn=topic_arn,
        Subject=subject(outcome),
        MessageStructure="json",
        Message=json.dumps(message(outcome, settings)),
        MessageAttributes={
            "control": {"DataType": "String", "StringValue": str(outcome.control)},
            "status": {"DataType": "String", "StringValue": outcome.status.value},
        },
    )


# -- the sweep's summary ----------------------------------------------------------------------

_STATUS_MEANINGS = (
    "remediated: fixed by the sweep",
    "noncompliant: reported only (notify mode, or not fixable)",
    "exempted: allowed by an exemption tag",
    "failed: could not be fixed or checked (see its audit record)",
)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" + ("" if number == 1 else "s")


def summary_headline(summary: SweepSummary) -> str:
    """ "BucketWarden sweep: 7 findings on 4 buckets" (or "no findings on 2000 buckets"); an
    organization's adds "in 12 accounts" and how many were not reached."""
    findings = summary.tally.findings
    if not findings:
        headline = f"BucketWarden sweep: no findings on {_count(summary.buckets, 'bucket')}"
    else:
        flagged = _count(summary.tally.flagged, "bucket")
        headline = f"BucketWarden sweep: {_count(findings, 'finding')} on {flagged}"
    return headline + _accounts_phrase(summary)


def _accounts_phrase(summary: SweepSummary) -> str:
    if not summary.accounts:
        return ""
    unreached = len(summary.unavailable())
    return f" in {_count(len(summary.accounts), 'account')}" + (
        f" ({unreached} not reached)" if unreached else ""
    )


# Accounts named in an organization's summary, worst first (its JSON names them all).
SUMMARY_ACCOUNTS = 20


def _account_lines(summary: SweepSummary) -> list[str]:
    """An organization's accounts, worst first, for email: findings, or why not reached."""
    lines = []
    for line in summary.accounts[:SUMMARY_ACCOUNTS]:
        if line.reason is not None:
            lines.append(f"{line.account}  not reached: {email_value(line.reason)}")
        else:
            buckets = f"{line.flagged} of {_count(line.subjects, 'bucket')}"
            lines.append(f"{line.account}  {_count(line.findings, 'finding')} on {buckets}")
    more = len(summary.accounts) - SUMMARY_ACCOUNTS
    return lines + ([f"... and {_count(more, 'more account')}"] if more > 0 else [])


def _accounts_inline(summary: SweepSummary) -> str:
    """An organization's accounts, worst first, on one line: for chat."""
    return ", ".join(
        f"`{line.account}` (not reached)"
        if line.reason is not None
        else f"`{line.account}` ({line.findings})"
        for line in summary.accounts[:SUMMARY_ACCOUNTS]
    )


def summary_subject(summary: SweepSummary) -> str:
    return _sns_subject(summary_headline(summary))


def _scope_line(summary: SweepSummary) -> str:
    return (
        f"Sweep {summary.sweep_id} judged {_count(summary.buckets, 'bucket')} with "
        f"{_count(len(summary.controls), 'control')}, from {summary.started_at} to "
        f"{summary.finished_at}, in {_count(summary.invocations, 'invocation')}."
    )


def _control_table(summary: SweepSummary) -> list[str]:
    counts = {control: summary.counts(control) for control in summary.controls}
    statuses = next(iter(counts.values()), {}).keys()
    width = max([len("control"), *map(len, counts)])
    header = "control".ljust(width) + "".join(f" {status:>12}" for status in statuses)
    rows = [
        control.ljust(width) + "".join(f" {count:>12}" for count in by_status.values())
        for control, by_status in counts.items()
    ]
    return [header, *rows]


# Compliant buckets whose exemption tags (or allowlist entries) would not be honoured.
_EXEMPTION_WARNING = (
    "Exemptions that would not be honoured (no reason, expired), on compliant buckets"
)


def _ranked_lines(ranked: list[tuple[str, int]]) -> list[str]:
    """Subjects with their counts, one per line, counts aligned: for email."""
    return [f"{count:>5}  {email_value(name)}" for name, count in ranked]


def _ranked_inline(ranked: list[tuple[str, int]]) -> str:
    """Subjects with their counts on one line: for chat."""
    return ", ".join(f"`{chat_text(name)}` ({count})" for name, count in ranked)


def summary_email_text(summary: SweepSummary, settings: Settings) -> str:
    worst = summary.worst()
    lines = [
        summary_headline(summary) + ".",
        "",
        _scope_line(summary),
        "",
        "Outcomes by control:",
        *_control_table(summary),
        "",
        *_STATUS_MEANINGS,
    ]
    if summary.accounts:
        lines += ["", "Accounts, worst first:", *_account_lines(summary)]
    if worst:
        lines += ["", "Most findings:", *_ranked_lines(worst)]
    warned = summary.warned()
    if warned:
        lines += [
            "",
            f"{_EXEMPTION_WARNING}; checks per bucket:",
            *_ranked_lines(warned),
            "See each with: bucketwarden scan --bucket NAME",
        ]
    lines += [
        "",
        "The sweep sends no message per finding: each has its own audit record "
        "(found_by = sweep) with the exact before and after.",
        f"To exempt a bucket from a control, tag it {settings.exempt_tag_key} = <control id> "
        f"and {settings.exempt_reason_key} = <why it must differ>.",
    ]
    return "\n".join(lines)


def _subject_arn(name: str) -> str:
    """An ARN for a summary subject: an access point ARN, an account id or a bucket name."""
    if name.startswith("arn:"):
        return name
    if name.isdigit():
        return f"arn:aws:iam::{name}:root"
    return f"arn:aws:s3:::{name}"


def _findings_of(counts: dict[str, int]) -> str:
    found = [f"{count} {status}" for status, count in counts.items() if count]
    return ", ".join(found) if found else "nothing to judge"


def summary_chatbot_message(summary: SweepSummary, settings: Settings) -> dict[str, Any]:
    findings = [
        f"• `{control}`: {_findings_of(summary.counts(control))}" for control in summary.controls
    ]
    worst = _ranked_inline(summary.worst())
    warned = _ranked_inline(summary.warned())
    description = "\n".join(
        [
            _scope_line(summary),
            *findings,
            *(
                [f"*Accounts, worst first:* {_accounts_inline(summary)}"]
                if summary.accounts
                else []
            ),
            *([f"*Most findings:* {worst}"] if worst else []),
            *([f"*{_EXEMPTION_WARNING}:* {warned}"] if warned else []),
        ]
    )
    key = settings.exempt_tag_key
    emoji = ":warning:" if summary.tally.findings else ":white_check_mark:"
    return {
        "version": "1.0",
        "source": "custom",
        "id": summary.sweep_id,
        "content": {
            "textType": "client-markdown",
            "title": f"{emoji} {summary_headline(summary)}",
            "description": description,
            "nextSteps": [
                "Each finding has an audit record with `found_by` = sweep",
                f"Exempt with tags `{key}=<control>` and `{key}-reason`",
            ],
        },
        "metadata": {
            "threadId": "bucketwarden-sweep",
            "summary": summary_headline(summary),
            "eventType": "sweep-summary",
            "relatedResources": [_subject_arn(name) for name, _ in summary.worst()],
        },
    }


def summary_message(summary: SweepSummary, settings: Settings) -> dict[str, str]:
    machine = json.dumps(summary.to_dict(), sort_keys=True)
    email = summary_email_text(summary, settings)
    return by_protocol(machine, email, summary_chatbot_message(summary, settings))


def publish_summary(
    sns: SNSClient, topic_arn: str, summary: SweepSummary, settings: Settings
) -> None:
    """The sweep's one notification: totals per control and status, the worst subjects."""
    _publish(
        sns,
        TopicArn=topic_arn,
        Subject=summary_subject(summary),
        MessageStructure="json",
        Message=json.dumps(summary_message(summary, settings)),
        MessageAttributes={
            "kind": {"DataType": "String", "StringValue": "sweep-summary"},
            "findings": {"DataType": "Number", "StringValue": str(summary.tally.findings)},
        },
    )


class Notifier:
    """Sends notifications to the stack's SNS topic, with the client it is given."""

    def __init__(self, sns: SNSClient, topic_arn: str, settings: Settings) -> None:
        self.sns = sns
        self.topic_arn = topic_arn
        self.settings = settings

    def publish(self, outcome: Outcome) -> None:
        publish(self.sns, self.topic_arn, outcome, self.settings)

    def publish_summary(self, summary: SweepSummary) -> None:
        publish_summary(self.sns, self.topic_arn, summary, self.settings)
