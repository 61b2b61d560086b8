"""Drop the ``varchar_pattern_ops`` index Django made for ``rm_search_doc.key``.

Django adds one beside every indexed ``CharField`` for ``LIKE 'prefix%'`` lookups; nothing
looks documents up by a key prefix (only by the whole key, through the primary key), and a
rebuild paid for keeping it on every document it loaded.
"""

from django.db import migrations

INDEX = "rm_search_doc_key_0387d627_like"


class Migration(migrations.Migration):
    dependencies = [
        ("readmodels", "0009_search_doc_fts_tickets_customers"),
    ]

    operations = [
        migrations.RunSQL(
            f'DROP INDEX IF EXISTS "{INDEX}"',
            reverse_sql=f'CREATE INDEX "{INDEX}" ON "rm_search_doc" ("key" varchar_pattern_ops)',
        ),
    ]
