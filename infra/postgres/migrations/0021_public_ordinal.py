# rm_ticket.public_version becomes the ticket's public version as its customer counts it
# (1, 2, 3, ...: how many public events it has had, domain.ticket.Ticket.public_version) instead
# of the real version of its last public event, each public message gets its own
# (rm_message.public_version), and the notification projector's facts of a ticket keep it
# (rm_notification_ticket.public_version) for the customer's notifications. All are backfilled from the event store, with the rule of
# domain.ticket.is_public written in SQL; a rebuild (`manage.py projector rebuild read_models`)
# computes the same from the events.

from django.db import migrations, models

# domain.ticket.is_public: these follow the event's `internal` flag, these are never public.
BY_FLAG = [
    "deskstream.ticket:MessagePosted",
    "deskstream.ticket:AttachmentUploaded",
    "deskstream.ticket:AttachmentScanned",
]
NEVER = [
    "deskstream.ticket:SlaBreached",
    "deskstream.ticket:SlaReminderDue",
    "deskstream.ticket:TeamChanged",
    "deskstream.ticket:DraftRequested",
    "deskstream.ticket:DraftGenerated",
    "deskstream.ticket:ReplySentFromDraft",
]
EVENTS = "deskstream_events"  # command_api.application.DeskstreamApplication's table

ORDINALS = f"""
CREATE TEMPORARY TABLE public_ordinal ON COMMIT DROP AS
SELECT originator_id AS ticket_id, originator_version AS version,
       count(*) FILTER (WHERE public) OVER (
           PARTITION BY originator_id ORDER BY originator_version
       ) AS public_version
FROM (
    SELECT originator_id, originator_version,
           CASE
               WHEN topic = ANY(%(by_flag)s) THEN NOT coalesce(
                   (convert_from(state, 'UTF8')::jsonb ->> 'internal')::boolean, false)
               WHEN topic = ANY(%(never)s) THEN false
               ELSE true
           END AS public
    FROM {EVENTS}
    WHERE topic LIKE 'deskstream.ticket:%%'
) AS events
"""


def backfill(apps, schema_editor):
    with schema_editor.connection.cursor() as cur:
        cur.execute("SELECT to_regclass(%s) IS NOT NULL", [EVENTS])
        if not cur.fetchone()[0]:
            return  # no event store yet: no projected rows either
        cur.execute("DROP TABLE IF EXISTS pg_temp.public_ordinal")
        cur.execute(ORDINALS, {"by_flag": BY_FLAG, "never": NEVER})
        cur.execute("CREATE INDEX ON public_ordinal (ticket_id, version)")
        # A row as far as it was projected: the count at its own (real) version.
        cur.execute(
            "UPDATE rm_ticket t SET public_version = o.public_version FROM public_ordinal o "
            "WHERE o.ticket_id = t.id AND o.version = t.version"
        )
        cur.execute(
            "UPDATE rm_message m SET public_version = o.public_version FROM public_ordinal o "
            "WHERE o.ticket_id = m.ticket_id AND o.version = m.version AND NOT m.internal"
        )
        cur.execute(
            "UPDATE rm_notification_ticket f SET public_version = o.public_version "
            "FROM public_ordinal o WHERE o.ticket_id = f.id AND o.version = f.version"
        )


class Migration(migrations.Migration):
    dependencies = [
        ("readmodels", "0020_macros_and_saved_filters"),
    ]

    operations = [
        migrations.AddField(
            model_name="messagerecord",
            name="public_version",
            field=models.IntegerField(null=True),
        ),
        migrations.AddField(
            model_name="notificationticketrecord",
            name="public_version",
            field=models.IntegerField(default=0),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
