"""Is a bucket or access point policy public? S3's own answer, with the reasons.

S3 starts from "public" and looks for a reason to call each Allow statement non-public: it
grants only to fixed principals, or a condition pins one of a few keys to fixed values (no
wildcard, no policy variable; `aws:SourceIp` no broader than /8 or /32). One public statement
makes the whole policy public (S3 user guide, "Blocking public access", "The meaning of public";
docs/policy-analysis.md has the rules with examples).

Pure Python and standard library only: it runs in Lambda (layer) as well as in the CLI.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

Context = Literal["bucket", "access-point"]
CONTEXTS: tuple[Context, ...] = ("bucket", "access-point")

NO_CONDITION = "no condition restricts it"

# Condition keys (lower case: IAM compares key names case-insensitively) that make a statement
# non-public when pinned to fixed values. The S3 list, plus aws:PrincipalAccount and
# aws:PrincipalArn, which name "an AWS principal" exactly as the Principal element does.
RESTRICTING_KEYS = {
    key.lower(): key
    for key in (
        "aws:SourceIp",
        "aws:SourceArn",
        "aws:SourceVpc",
        "aws:SourceVpce",
        "aws:SourceOwner",
        "aws:SourceAccount",
        "aws:PrincipalOrgID",
        "aws:PrincipalAccount",
        "aws:PrincipalArn",
        "aws:userid",
        "s3:x-amz-server-side-encryption-aws-kms-key-id",
        "s3:DataAccessPointArn",
        "s3:DataAccessPointAccount",
    )
}
SOURCE_IP = "aws:sourceip"
ACCESS_POINT_ARN = "s3:dataaccesspointarn"
# Operators (lower case, without ForAnyValue:/ForAllValues: and IfExists) that admit only the
# listed values. StringLike and ArnLike count: their values are checked for wildcards anyway.
PINNING_OPERATORS = frozenset(
    {"stringequals", "stringequalsignorecase", "stringlike", "arnequals", "arnlike", "ipaddress"}
)
# Private ranges S3 does not call broad (RFC 1918); none is broader than /8, listed for clarity.
PRIVATE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
BROADEST_PREFIX = {4: 8, 6: 32}
# Values a policy may hold for a principal or a condition key (account ids may be numbers).
SCALARS = (str, int, float, bool)
# Principal types whose fixed values S3 accepts as non-public. Federated is never among them:
# a web identity provider (graph.facebook.com, Cognito) signs in anyone (the guide's example 1).
FIXED_PRINCIPAL_TYPES = frozenset({"AWS", "Service", "CanonicalUser"})


class PolicyError(ValueError):
    """The document is not a policy: it cannot be judged."""


class Reason(NamedTuple):
    """Why one statement is public: which statement, which principal, which condition."""

    statement: str  # its Sid, else "#n" (numbered from 1)
    principal: str  # the principals that make it public, each with why
    condition: str  # NO_CONDITION, or why each condition key fails to restrict it
    # The fixed principals the statement also names ("" when none): a fix removes only the
    # public ones, and the statement stays for these.
    kept: str = ""

    @property
    def text(self) -> str:
        name = f'"{self.statement}"' if not self.statement.startswith("#") else self.statement
        if self.condition == NO_CONDITION:
            tail = NO_CONDITION
        else:
            tail = f"its conditions do not restrict it: {self.condition}"
        found = f"Statement {name} is public: it allows {self.principal} and {tail}."
        if not self.kept:
            return found
        return (
            f"{found} It also names {self.kept}: a fix removes only the public principals and "
            "keeps the statement for those."
        )

    def as_dict(self) -> dict[str, str]:
        return {
            "statement": self.statement,
            "principal": self.principal,
            "condition": self.condition,
            "kept": self.kept,
            "text": self.text,
        }


@dataclass(frozen=True)
class StatementResult:
    """The judgement of one statement; `index` is its position in the Statement list (from 0)."""

    index: int
    label: str
    effect: str
    public: bool
    summary: str  # a few words on why, public or not
    reason: Reason | None = None


class Verdict(NamedTuple):
    """A policy's verdict: public if any statement is; one reason per public statement."""

    public: bool
    reasons: list[Reason]
    statements: list[StatementResult]
    context: Context = "bucket"

    @property
    def public_statement_indexes(self) -> list[int]:
        """Positions (from 0) of the public statements: what a remediation removes."""
        return [s.index for s in self.statements if s.public]

    def as_dict(self) -> dict[str, Any]:
        return {"public": self.public, "reasons": [r.as_dict() for r in self.reasons]}


class _Check(NamedTuple):
    """Whether one condition restricts who a statement grants to, and what it says."""

    restricts: bool
    note: str


def analyze(document: dict[str, Any] | str, context: Context = "bucket") -> Verdict:
    """Judge `document` (a policy, parsed or JSON text) as S3 does for a bucket or access point."""
    if context not in CONTEXTS:
        raise ValueError(f"context must be one of {', '.join(CONTEXTS)}, not {context!r}")
    results = [_judge(i, s, context) for i, s in enumerate(statements(document))]
    reasons = [r.reason for r in results if r.reason is not None]
    return Verdict(bool(reasons), reasons, results, context)


def statements(document: dict[str, Any] | str) -> list[Any]:
    """The Statement list of a policy (a single statement object counts as a list of one)."""
    policy = _parse(document)
    if "Statement" not in policy:
        raise PolicyError("the document has no Statement")
    found = policy["Statement"]
    if isinstance(found, dict):
        return [found]
    if not isinstance(found, list):
        raise PolicyError("Statement must be an object or a list of objects")
    return found


def _parse(document: dict[str, Any] | str) -> dict[str, Any]:
    if isinstance(document, str | bytes):
        try:
            document = json.loads(document)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise PolicyError(f"not JSON ({error})") from error
    if not isinstance(document, dict):
        raise PolicyError(f"a policy is a JSON object, not {type(document).__name__}")
    return document


def _label(index: int, statement: dict[str, Any]) -> str:
    sid = statement.get("Sid")
    return sid if isinstance(sid, str) and sid else f"#{index + 1}"


def _judge(index: int, statement: Any, context: Context) -> StatementResult:
    if not isinstance(statement, dict):
        raise PolicyError(f"statement #{index + 1} is not an object")
    label = _label(index, statement)
    effect = statement.get("Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicyError(f"statement {label}: Effect must be Allow or Deny, not {effect!r}")
    if effect == "Deny":
        return StatementResult(index, label, effect, False, "a Deny statement grants nothing")
    grantees = _public_grantees(statement, label)
    if not grantees:
        return StatementResult(index, label, effect, False, "grants to fixed principals only")
    checks = list(_condition_checks(statement.get("Condition"), context, label))
    restricting = [c.note for c in checks if c.restricts]
    if restricting:
        return StatementResult(index, label, effect, False, f"restricted: {restricting[0]}")
    condition = "; ".join(c.note for c in checks) or NO_CONDITION
    narrowed = without_public_principals(statement)
    kept = _named_principals(narrowed["Principal"]) if narrowed else ""
    reason = Reason(label, ", ".join(grantees), condition, kept)
    return StatementResult(index, label, effect, True, reason.text, reason)


# -- principals ---------------------------------------------------------------------------------


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _public_grantees(statement: dict[str, Any], label: str) -> list[str]:
    """The principals of an Allow statement that are not fixed, each with why; [] if all are."""
    if "NotPrincipal" in statement:
        return _not_principal_grantees(statement["NotPrincipal"], label)
    if "Principal" not in statement:
        raise PolicyError(f"statement {label}: an Allow statement needs Principal or NotPrincipal")
    principal = statement["Principal"]
    if principal == "*":
        return ['"*" (anyone)']
    if not isinstance(principal, dict):
        raise PolicyError(f'statement {label}: Principal must be "*" or an object')
    grantees: list[str] = []
    for kind, values in principal.items():
        for value in _as_list(values):
            why = _principal_problem(str(kind), value)
            if why:
                grantees.append(f'{kind} "{value}" ({why})')
    return grantees


def without_public_principals(statement: dict[str, Any]) -> dict[str, Any] | None:
    """The statement granting only to its fixed principals; None when it names none.

    A statement is public only through principals that are not fixed (conditions can only make
    it non-public), so once those go the rest of it is not public, whatever its conditions: an
    account named beside "*" keeps its grant. `Principal: "*"`, NotPrincipal and a statement
    whose principals are all public cannot be split: the whole statement goes.
    """
    principal = statement.get("Principal")
    if "NotPrincipal" in statement or not isinstance(principal, dict):
        return None
    kept: dict[str, Any] = {}
    for kind, values in principal.items():
        fixed = [v for v in _as_list(values) if _principal_problem(str(kind), v) is None]
        if fixed:  # one value stays one value; a list stays a list
            kept[kind] = fixed if isinstance(values, list) else fixed[0]
    return {**statement, "Principal": kept} if kept else None


def _named_principals(principal: dict[str, Any]) -> str:
    named = (f'{kind} "{v}"' for kind, values in principal.items() for v in _as_list(values))
    return ", ".join(named)


def _not_principal_grantees(not_principal: Any, label: str) -> list[str]:
    # Allow with NotPrincipal grants to everyone not listed: public, unless it excludes everyone.
    if not_principal == "*":
        return []
    if not isinstance(not_principal, dict):
        raise PolicyError(f'statement {label}: NotPrincipal must be "*" or an object')
    listed = [(str(k), str(v)) for k, vs in not_principal.items() for v in _as_list(vs)]
    if any(value == "*" for _, value in listed):
        return []
    names = ", ".join(f'{kind} "{value}"' for kind, value in listed) or "nobody"
    return [f"everyone except {names} (NotPrincipal)"]


def _principal_problem(kind: str, value: Any) -> str | None:
    """Why one principal value is not fixed, or None when it is."""
    if not isinstance(value, SCALARS):
        return "not a principal name"
    return _principal_name_problem(kind, str(value))


def _principal_name_problem(kind: str, value: str) -> str | None:
    if kind == "Federated":
        return "anyone the identity provider signs in"
    if value == "*":
        return "anyone"
    if "${" in value:
        return "uses a policy variable"
    if "*" in value or "?" in value:
        return "has a wildcard"
    if kind not in FIXED_PRINCIPAL_TYPES:
        return "a principal type S3 does not treat as fixed"
    return None


# -- conditions ---------------------------------------------------------------------------------


def _condition_checks(condition: Any, context: Context, label: str) -> Iterator[_Check]:
    if condition is None:
        return
    if not isinstance(condition, dict):
        raise PolicyError(f"statement {label}: Condition must be an object")
    for operator, body in condition.items():
        if not isinstance(body, dict):
            raise PolicyError(f"statement {label}: Condition {operator} must be an object")
        for key, values in body.items():
            yield _check(str(operator), str(key), _as_list(values), context)


def _split_operator(operator: str) -> tuple[str, str, bool]:
    """(set qualifier, base operator, IfExists) of an operator, the first two in lower case."""
    qualifier, _, base = operator.lower().rpartition(":")
    if_exists = base.endswith("ifexists")
    return qualifier, base.removesuffix("ifexists"), if_exists


def _check(operator: str, key: str, values: list[Any], context: Context) -> _Check:
    """Does `operator: {key: values}` pin a restricting key to fixed values? If not, why not."""
    name = RESTRICTING_KEYS.get(key.lower())
    if name is None:
        return _Check(False, f"{key} does not limit who can call")
    problem = _operator_problem(operator, name, context) or _values_problem(name, values)
    if problem:
        return _Check(False, problem)
    shown = ", ".join(f"'{v}'" for v in values)
    return _Check(True, f"{operator} {name} is fixed to {shown}")


def _operator_problem(operator: str, name: str, context: Context) -> str | None:
    qualifier, base, if_exists = _split_operator(operator)
    if if_exists:
        return f"{operator} lets requests without {name} through"
    if qualifier == "forallvalues":
        return f"{operator} also matches requests without {name}"
    if base not in PINNING_OPERATORS:
        if "not" in base:
            return f"{operator} {name} excludes values instead of pinning them"
        return f"{operator} does not pin {name} to values"
    return _key_operator_problem(operator, base, name, context)


def _key_operator_problem(operator: str, base: str, name: str, context: Context) -> str | None:
    # aws:SourceIp is pinned by IpAddress only, and IpAddress pins nothing else.
    if (name.lower() == SOURCE_IP) != (base == "ipaddress"):
        return f"{operator} cannot pin {name}" + (" (IpAddress can)" if base != "ipaddress" else "")
    if name.lower() == ACCESS_POINT_ARN and context == "access-point":
        return f"{name} does not make an access point policy non-public"
    return None


def _values_problem(name: str, values: list[Any]) -> str | None:
    if not values:
        return f"{name} has no value"
    if not all(isinstance(value, SCALARS) for value in values):
        return f"{name} has a value that is not a string"
    problems = (_value_problem(name, str(value)) for value in values)
    return next((p for p in problems if p), None)


def _value_problem(name: str, value: str) -> str | None:
    if "${" in value:
        return f"{name} value '{value}' uses a policy variable"
    if name.lower() == SOURCE_IP:
        return _ip_problem(name, value)
    if "*" in value or "?" in value:
        return _wildcard_problem(name, value)
    return None


def _wildcard_problem(name: str, value: str) -> str | None:
    key = name.lower()
    if key == ACCESS_POINT_ARN:
        if _any_access_point_of_fixed_account(value):
            return None  # the bucket-policy exception: any access point of one account
        return f"{name} value '{value}' has a wildcard outside the access point name"
    if key == "aws:userid" and value.endswith(":*"):
        return f"{name} value '{value}' matches every session of a role (ROLEID:*)"
    return f"{name} value '{value}' has a wildcard"


def _any_access_point_of_fixed_account(arn: str) -> bool:
    """arn:PARTITION:s3:REGION:ACCOUNT:accesspoint/NAME with a wildcard in NAME only."""
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "s3" or not parts[5].startswith("accesspoint/"):
        return False
    fixed = ":".join(parts[:5]) + ":accesspoint/"
    return "*" not in fixed and "?" not in fixed and parts[4].isdigit()


def _ip_problem(name: str, value: str) -> str | None:
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return f"{name} value '{value}' is not an IP range"
    limit = BROADEST_PREFIX[network.version]
    private = any(
        network.version == p.version and network.subnet_of(p)  # type: ignore[arg-type]
        for p in PRIVATE_NETWORKS
    )
    if network.prefixlen >= limit or private:
        return None
    return f"{name} {value} is broader than /{limit}"


# -- who a policy grants to by account ------------------------------------------------------------

_ACCOUNT_ARN = re.compile(r"^arn:[\w-]+:(?:iam|sts)::(\d{12}):")
_ACCOUNT_ID = re.compile(r"^\d{12}$")
PRINCIPAL_ACCOUNT = "aws:principalaccount"


def named_accounts(document: dict[str, Any] | str) -> set[str]:
    """The accounts the Allow statements name: an AWS principal's account ("account ID", from an
    id or an ARN), a canonical user ("canonical user ID") and `aws:PrincipalAccount` values.

    What a public grant opens is the verdict's to say; this names fixed grantees, so that a
    caller can tell a grant to another account from one to its own.
    """
    found: set[str] = set()
    for statement in statements(document):
        if not isinstance(statement, dict) or statement.get("Effect") != "Allow":
            continue
        principal = statement.get("Principal")
        if isinstance(principal, dict):
            found.update(_aws_accounts(principal.get("AWS", [])))
            canonical = _as_list(principal.get("CanonicalUser", []))
            found.update(f"canonical user {value}" for value in canonical)
        found.update(f"account {value}" for value in _principal_account_values(statement))
    return found


def _aws_accounts(values: Any) -> set[str]:
    found: set[str] = set()
    for value in _as_list(values):
        text = str(value)
        match = _ACCOUNT_ARN.match(text)
        if match or _ACCOUNT_ID.match(text):
            found.add(f"account {match[1] if match else text}")
    return found


def _principal_account_values(statement: dict[str, Any]) -> list[str]:
    condition = statement.get("Condition")
    bodies = condition.values() if isinstance(condition, dict) else []
    return [
        str(value)
        for body in bodies
        if isinstance(body, dict)
        for key, values in body.items()
        if str(key).lower() == PRINCIPAL_ACCOUNT
        for value in _as_list(values)
    ]
