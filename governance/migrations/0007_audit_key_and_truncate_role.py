"""The audit chain may be keyed (`key_id`), and only a database superuser may truncate it.

The trigger of 0003 let any session that sets `governance.allow_audit_truncate = on`
TRUNCATE the trail, so the table's owner (often the application's own role) could
empty it. Now the setting counts only when the current role is a superuser: the role
that runs migrations and the test suite, never the application's (see the README for
the two roles). UPDATE and DELETE stay refused for everyone.
"""

from django.db import migrations, models

CREATE = """
CREATE OR REPLACE FUNCTION governance_audit_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND current_setting('governance.allow_audit_truncate', true) = 'on'
       AND (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'governance_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
"""

PREVIOUS = """
CREATE OR REPLACE FUNCTION governance_audit_refuse_change() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND current_setting('governance.allow_audit_truncate', true) = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'governance_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("governance", "0006_field_labels")]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(PREVIOUS)),
    ]
