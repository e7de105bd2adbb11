from django.apps import AppConfig


class RolloutsConfig(AppConfig):
    name = "rollouts"
    verbose_name = "Rollouts"

    def ready(self) -> None:
        from rollouts import tasks  # noqa: F401  (its receiver hands rollbacks to workers)
