"""Audit events, append-only on PostgreSQL (like the stock ledger, inventory.0001).

A row trigger refuses UPDATE and DELETE; the one update let through is the actor
foreign key's own ON DELETE SET NULL (nothing else on the row changes). A statement
trigger refuses TRUNCATE unless the session sets `ecommerce.audit_truncate = 'allow'`:
the test suite's database flush does (tests/conftest.py); nothing else in the project
sets it.
"""

import django.db.models.deletion
import django.utils.timezone
from django.conf import settings
from django.db import migrations, models

APPEND_ONLY = [
    """
    CREATE OR REPLACE FUNCTION audit_auditevent_append_only() RETURNS trigger AS $$
    BEGIN
        IF TG_OP = 'UPDATE' THEN
            IF OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
               AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
                RETURN NEW;
            END IF;
        ELSIF TG_OP = 'TRUNCATE' THEN
            IF current_setting('ecommerce.audit_truncate', true) = 'allow' THEN
                RETURN NULL;
            END IF;
        END IF;
        RAISE EXCEPTION 'audit_auditevent is append-only (% refused)', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END;
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent",
    "CREATE TRIGGER audit_auditevent_append_only BEFORE UPDATE OR DELETE ON audit_auditevent "
    "FOR EACH ROW EXECUTE FUNCTION audit_auditevent_append_only()",
    "DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON audit_auditevent",
    "CREATE TRIGGER audit_auditevent_no_truncate BEFORE TRUNCATE ON audit_auditevent "
    "FOR EACH STATEMENT EXECUTE FUNCTION audit_auditevent_append_only()",
]
NOT_APPEND_ONLY = [
    "DROP TRIGGER IF EXISTS audit_auditevent_no_truncate ON audit_auditevent",
    "DROP TRIGGER IF EXISTS audit_auditevent_append_only ON audit_auditevent",
    "DROP FUNCTION IF EXISTS audit_auditevent_append_only()",
]


def _on_postgresql(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor != "postgresql":
            return
        for statement in statements:
            schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ('contenttypes', '0002_remove_content_type_name'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name='AuditEvent',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('occurred_at', models.DateTimeField(default=django.utils.timezone.now)),
                ('actor_label', models.CharField(help_text="The actor's email then, or command:<name> (<OS user>).", max_length=255)),
                ('source', models.CharField(choices=[('admin', 'admin'), ('api', 'API'), ('command', 'command')], max_length=16)),
                ('action', models.CharField(max_length=64)),
                ('object_id', models.CharField(max_length=64)),
                ('object_repr', models.CharField(max_length=200)),
                ('changes', models.JSONField(default=dict, help_text='{field: {"before": x, "after": y}}')),
                ('request_id', models.CharField(blank=True, max_length=128)),
                ('actor', models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.SET_NULL, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('content_type', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='contenttypes.contenttype')),
            ],
            options={
                'ordering': ('-occurred_at', '-pk'),
                'indexes': [models.Index(fields=['occurred_at', 'id'], name='audit_occurred_idx'), models.Index(fields=['actor', 'occurred_at'], name='audit_actor_idx'), models.Index(fields=['action', 'occurred_at'], name='audit_action_idx'), models.Index(fields=['content_type', 'object_id', 'occurred_at'], name='audit_object_idx')],
            },
        ),
        migrations.RunPython(_on_postgresql(APPEND_ONLY), _on_postgresql(NOT_APPEND_ONLY)),
    ]
