"""What a release's changes mean: matched risk rules, effective tier and risk, council
approvals, customer notice, and which checklist items it needs. Pure functions of data.

Globs follow git/CODEOWNERS: `*` stays within one directory, `**` crosses any number
of them (wcmatch with GLOBSTAR); `payments/**` matches files below `payments/`, not a
file named `payments`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from wcmatch import glob

from governance.choices import RISK_ORDER, Risk, Tier
from governance.models import ChecklistTemplate, RiskRule

_GLOB_FLAGS = glob.GLOBSTAR | glob.DOTGLOB


def path_matches(pattern: str, path: str) -> bool:
    return glob.globmatch(path, pattern, flags=_GLOB_FLAGS)


def normalise_path(path: str) -> str:
    path = path.strip()
    while path.startswith("./"):
        path = path[2:]
    return path.lstrip("/")


@dataclass(frozen=True)
class Assessment:
    tier: str
    risk: str
    matched_rules: list[dict] = field(default_factory=list)
    approvals_required: int = 0
    notice_required: bool = False
    required_keys: frozenset[str] = frozenset()


def assess(
    *,
    declared_tier: str,
    changed_paths: Iterable[str],
    change_types: Iterable[str],
    rules: Iterable[RiskRule],
    templates: Iterable[ChecklistTemplate],
    notice_types: frozenset[str],
    high_tier_approvals: int,
) -> Assessment:
    """Several matching rules combine: the union of their checks, the most approvals."""
    paths = list(changed_paths)
    matched = [
        rule
        for rule in rules
        if rule.is_active and any(path_matches(rule.pattern, p) for p in paths)
    ]
    critical = any(rule.risk == Risk.CRITICAL for rule in matched)
    tier = Tier.HIGH if critical else declared_tier
    risk = max([str(tier), *(rule.risk for rule in matched)], key=RISK_ORDER.index)
    approvals = max(
        [high_tier_approvals if tier == Tier.HIGH else 0, *(r.approvals_required for r in matched)]
    )
    notice = any(change_type in notice_types for change_type in change_types)
    rule_checks = {check for rule in matched for check in rule.extra_checks}
    required = {
        template.key
        for template in templates
        if tier in template.tiers
        or template.key in rule_checks
        or (template.when_notice_required and notice)
        or (template.when_high_risk and critical)
    }
    return Assessment(
        tier=tier,
        risk=risk,
        matched_rules=[
            {
                "pattern": rule.pattern,
                "risk": rule.risk,
                "approvals_required": rule.approvals_required,
                "extra_checks": list(rule.extra_checks),
                "description": rule.description,
            }
            for rule in matched
        ],
        approvals_required=approvals,
        notice_required=notice,
        required_keys=frozenset(required),
    )
