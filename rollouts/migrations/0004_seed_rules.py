from django.db import migrations

from rollouts.seeds import seed_rules


def seed(apps, schema_editor):
    seed_rules(
        apps.get_model("rollouts", "AbortRule"),
        apps.get_model("rollouts", "MetricThreshold"),
        apps.get_model("rollouts", "ConversionTarget"),
    )


class Migration(migrations.Migration):
    dependencies = [("rollouts", "0003_abort_rules")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
