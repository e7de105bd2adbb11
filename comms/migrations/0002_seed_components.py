from django.db import migrations

from comms.seeds import seed_components


def seed(apps, schema_editor):
    seed_components(apps.get_model("comms", "Component"))


class Migration(migrations.Migration):
    dependencies = [("comms", "0001_status_page")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
