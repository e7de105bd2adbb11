from tests.rollouts.conftest import approved  # noqa: F401  (the same fixture)
