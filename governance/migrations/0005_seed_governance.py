from django.db import migrations

from governance.seeds import seed_governance


def seed(apps, schema_editor):
    seed_governance(
        apps.get_model("governance", "RiskRule"),
        apps.get_model("governance", "ChecklistTemplate"),
        apps.get_model("governance", "NoticePolicy"),
    )


class Migration(migrations.Migration):
    dependencies = [("governance", "0004_releases")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
