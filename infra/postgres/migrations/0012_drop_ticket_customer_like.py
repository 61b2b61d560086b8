"""Drop the ``varchar_pattern_ops`` index Django made for ``rm_ticket.customer_id``.

As for ``rm_search_doc.key`` (0010): Django adds one beside every indexed ``CharField``
for ``LIKE 'prefix%'`` lookups, and nothing looks tickets up by a customer id prefix (only
by the whole id, through the plain index beside it). A ticket's row is updated by every
event of the ticket, and no update of it is HOT (``updated_at`` is indexed), so each of
them inserted into this index too (ADR 0022).
"""

from django.db import migrations

INDEX = "rm_ticket_customer_id_64081027_like"


class Migration(migrations.Migration):
    dependencies = [
        ("readmodels", "0011_search_doc_message_filters"),
    ]

    operations = [
        migrations.RunSQL(
            f'DROP INDEX IF EXISTS "{INDEX}"',
            reverse_sql=f'CREATE INDEX "{INDEX}" ON "rm_ticket" ("customer_id" varchar_pattern_ops)',
        ),
    ]
