"""Risk rules: CODEOWNERS-like globs, combined requirements, forced tier."""

from __future__ import annotations

import pytest

from governance.models import RiskRule
from governance.rules import path_matches

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("src/backend/payments/**", "src/backend/payments/x.py", True),
        ("src/backend/payments/**", "src/backend/payments/a/b/c.py", True),
        ("src/backend/payments/**", "src/backend/payments", False),
        ("src/backend/payments/**", "src/backend/paymentsx/a.py", False),
        ("src/backend/payments/**", "other/src/backend/payments/x.py", False),
        ("src/backend/auth/**", "src/backend/auth/.env", True),
        ("**/migrations/**", "a/migrations/0001.py", True),
        ("**/migrations/**", "migrations/0001.py", True),
        ("**/migrations/**", "a/b/migrations/x/0001.py", True),
        ("**/migrations/**", "migrations.py", False),
        ("**/migrations/**", "a/migrations.py", False),
        ("**/migrations/**", "a/migrations", False),
        ("src/*.py", "src/b.py", True),
        ("src/*.py", "src/a/b.py", False),
    ],
)
def test_globs_follow_codeowners_semantics(pattern: str, path: str, matches: bool) -> None:
    assert path_matches(pattern, path) is matches


def test_the_guide_rules_are_seeded() -> None:
    rules = {rule.pattern: rule for rule in RiskRule.objects.all()}
    assert set(rules) == {
        "src/backend/auth/**",
        "src/backend/payments/**",
        "src/backend/avatars/**",
        "**/migrations/**",
    }
    assert rules["src/backend/payments/**"].extra_checks == ["pci_compliance", "fraud_detection"]
    assert all(rule.approvals_required == 2 and rule.risk == "critical" for rule in rules.values())
