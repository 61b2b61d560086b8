from django.db import migrations, models


class Migration(migrations.Migration):

    initial = True

    dependencies = [
    ]

    operations = [
        migrations.CreateModel(
            name='RelayPosition',
            fields=[
                ('topic', models.CharField(max_length=200, primary_key=True, serialize=False)),
                ('position', models.BigIntegerField(default=0)),
                ('updated_at', models.DateTimeField(auto_now=True)),
            ],
            options={
                'db_table': 'kafka_relay_position',
            },
        ),
    ]
