"""On PostgreSQL the audit table refuses UPDATE, DELETE and TRUNCATE.

TRUNCATE is let through only when the session sets
`governance.allow_audit_truncate = on` (the test suite's flush between tests
does); UPDATE and DELETE are always refused. Someone who owns the table can
still drop the trigger: the hash chain is what makes such tampering visible.
"""

from django.db import migrations

CREATE = """
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

CREATE TRIGGER governance_auditevent_append_only
    BEFORE UPDATE OR DELETE ON governance_auditevent
    FOR EACH ROW EXECUTE FUNCTION governance_audit_refuse_change();

CREATE TRIGGER governance_auditevent_no_truncate
    BEFORE TRUNCATE ON governance_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION governance_audit_refuse_change();
"""

DROP = """
DROP TRIGGER IF EXISTS governance_auditevent_no_truncate ON governance_auditevent;
DROP TRIGGER IF EXISTS governance_auditevent_append_only ON governance_auditevent;
DROP FUNCTION IF EXISTS governance_audit_refuse_change();
"""


def _on_postgresql(sql):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("governance", "0002_role_groups")]

    operations = [migrations.RunPython(_on_postgresql(CREATE), _on_postgresql(DROP))]
