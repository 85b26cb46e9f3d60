"""The committed docs/inventory-reference.md is generated from the schema and up to date."""

from tnoctl.config import docgen


def test_committed_reference_is_up_to_date():
    assert docgen.OUTPUT.read_text() == docgen.render(), "run: python -m tnoctl.config.docgen"


def test_every_schema_field_is_described():
    from tnoctl.config.schema import BackupOverride, Contact, Mailbox, Office, Placement, Platform, Retention, Tenant

    for model in (Tenant, Placement, Mailbox, Office, Contact, BackupOverride, Platform, Retention):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"
