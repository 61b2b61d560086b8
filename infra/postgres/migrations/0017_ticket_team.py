# The tickets read model keeps the ticket's team (TeamChanged) for staff views.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('readmodels', '0016_admin_teams_and_rebuilds'),
    ]

    operations = [
        migrations.AddField(
            model_name='ticketrecord',
            name='team_id',
            field=models.CharField(max_length=64, null=True),
        ),
        # Tickets routed before this column existed: the assignment projection has followed
        # TeamChanged all along (a rebuild of the tickets projection gives the same).
        migrations.RunSQL(
            "UPDATE rm_ticket t SET team_id = a.team_id::text FROM rm_assign_ticket a "
            "WHERE a.id = t.id AND a.team_id IS NOT NULL",
            migrations.RunSQL.noop,
        ),
    ]
