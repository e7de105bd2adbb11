"""django-simple-history for governance models, keeping the acting user's name on
every historical row so it survives the user's deletion (history_user is SET_NULL)."""

from __future__ import annotations

from typing import Any

from django.db import models
from django.dispatch import receiver
from simple_history.models import HistoricalRecords
from simple_history.signals import pre_create_historical_record


class HistoricalUserName(models.Model):
    history_user_name = models.CharField(max_length=150, blank=True, default="")

    class Meta:
        abstract = True


def tracked_history(**options: Any) -> HistoricalRecords:
    return HistoricalRecords(bases=[HistoricalUserName], **options)


@receiver(pre_create_historical_record)
def _keep_user_name(sender: type, history_instance: Any, **kwargs: Any) -> None:
    user = kwargs.get("history_user") or getattr(history_instance, "history_user", None)
    if user is not None and hasattr(history_instance, "history_user_name"):
        history_instance.history_user_name = user.get_username()
