"""What `bucketwarden local` shows: each drift, what was done about it, each notification."""

from __future__ import annotations

import json
import sys
import threading
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.markup import escape

from bucketwarden_tools.report import STATUS_STYLES, change

# Outcomes that say nothing happened to anything: the service's own changes coming back.
QUIET_REASONS = ("change made by BucketWarden itself",)


def _clock(epoch: float | None) -> str:
    moment = datetime.fromtimestamp(epoch) if epoch else datetime.now()
    return moment.strftime("%H:%M:%S.%f")[:-3]


class LiveConsole:
    """Prints report items as they come, from any thread, as text or JSON lines."""

    def __init__(self, as_json: bool = False, console: Console | None = None) -> None:
        self.as_json = as_json
        # One event per line, however narrow the terminal or wherever the output goes.
        self.console = console or Console(highlight=False, soft_wrap=True)
        self._lock = threading.Lock()
        # Set by an organization's ready line: outcomes then name their account.
        self.organization = False

    def __call__(self, item: dict[str, Any]) -> None:
        with self._lock:
            if self.as_json:
                sys.stdout.write(json.dumps(item, sort_keys=True, default=str) + "\n")
                sys.stdout.flush()
                return
            line = self._line(item)
            if line:
                self.console.print(line)

    def _line(self, item: dict[str, Any]) -> str | None:
        kind = item.get("kind")
        when = f"[dim]{_clock(item.get('time'))}[/]"
        if kind == "ready":
            functions = ", ".join(item["functions"])
            line = (
                f"{when} [bold]BucketWarden local[/] on [cyan]{item['endpoint']}[/] "
                f"(functions: {functions}). Point any AWS client at it; Ctrl-C stops."
            )
            if item.get("https_endpoint"):
                line += (
                    f"\n{' ' * 13}Objects need TLS, as in S3: [cyan]{item['https_endpoint']}[/] "
                    f"with AWS_CA_BUNDLE={escape(str(item['ca_bundle']))}"
                )
            if item.get("accounts"):
                self.organization = True
                line += "\n" + organization_banner(item)
            return line
        if kind == "drift":
            return (
                f"{when} [bold]drift[/]  {item['event_name']} on [cyan]{item.get('bucket')}[/]"
                f"{self._in_account(item)} by {item.get('actor')} from {item.get('source_ip')}"
            )
        if kind == "outcome":
            return self._outcome_line(item, when, self._in_account(item))
        if kind == "notification":
            return f"{when} [bold]notify[/] {escape(str(item.get('subject')))}"
        if kind == "dead-letter":
            return (
                f"{when} [bold red]dead-letter[/] {item['function']} gave up on event "
                f"{item['event_id']} after {item['attempts']} attempts: {escape(item['error'])}"
            )
        return None

    def _in_account(self, item: dict[str, Any]) -> str:
        account = item.get("account")
        return f" in account {escape(str(account))}" if self.organization and account else ""

    @staticmethod
    def _outcome_line(item: dict[str, Any], when: str, where: str = "") -> str | None:
        status = str(item.get("status"))
        if status == "ignored" and str(item.get("reason")).startswith(QUIET_REASONS):
            return None
        style = STATUS_STYLES.get(status, "")
        latency = f" [dim]{item['latency_ms']} ms[/]" if item.get("latency_ms") is not None else ""
        what = escape(change(item).replace("\n", " "))
        warnings = "".join(
            f"\n{' ' * 13}[yellow]warning:[/] {escape(str(w))}" for w in item.get("warnings") or []
        )
        return (
            f"{when} [{style}]{status:<12}[/] {item.get('control') or '-'} on "
            f"[cyan]{item.get('bucket')}[/]{where}: {escape(str(item.get('reason')))} [dim]|[/] "
            f"{what}{latency}{warnings}"
        )


def organization_banner(ready: dict[str, Any]) -> str:
    """The organization of `--accounts`: its accounts, and how to act in a member."""
    hub = ready["hub_account"]
    members = [account for account in ready["accounts"] if account != hub]
    role = ready["member_user_role"]
    example = members[0] if members else "MEMBER"
    return (
        f"Organization {ready['organization_id']}: hub [bold]{hub}[/], members "
        f"{', '.join(members)}. To act in a member account: aws sts assume-role --role-arn "
        f"arn:aws:iam::{example}:role/{role} --role-session-name me --endpoint-url "
        f"{ready['endpoint']} (any member, the role {role})."
    )
