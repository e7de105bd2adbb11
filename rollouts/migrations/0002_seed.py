from django.db import migrations

from rollouts.seeds import seed_plans


def seed(apps, schema_editor):
    seed_plans(apps.get_model("rollouts", "Plan"), apps.get_model("rollouts", "Segment"))


class Migration(migrations.Migration):
    dependencies = [("rollouts", "0001_rollouts")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
