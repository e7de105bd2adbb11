from collections.abc import Iterator
from typing import Any

import pytest

from tests.rollouts.conftest import approved  # noqa: F401  (the same fixture)


@pytest.fixture
def eager(settings: Any) -> Iterator[None]:
    """Tasks run in-process after the commit, so their effect is visible here."""
    from portal.celery import app

    settings.CELERY_TASK_ALWAYS_EAGER = True
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = False
