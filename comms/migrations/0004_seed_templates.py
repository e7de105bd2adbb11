from django.db import migrations

from comms.seeds import seed_templates


def seed(apps, schema_editor):
    seed_templates(apps.get_model("comms", "MessageTemplate"))


class Migration(migrations.Migration):
    dependencies = [("comms", "0003_notices")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
