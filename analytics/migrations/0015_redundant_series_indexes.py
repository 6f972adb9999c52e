# Issue 17: the series foreign keys of the events and rollup tables lose their own index, which every insert
# maintained and no query needs: metric_event_series_time and metric_rollup_by_series start with the column.
# On PostgreSQL dropping the partitioned index drops each partition's.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('analytics', '0014_skill_user_day'),
    ]

    operations = [
        migrations.AlterField(
            model_name='metricevent',
            name='series',
            field=models.ForeignKey(db_constraint=False, db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='events', to='analytics.metricseries'),
        ),
        migrations.AlterField(
            model_name='metricrollup',
            name='series',
            field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True, on_delete=django.db.models.deletion.CASCADE, related_name='+', to='analytics.metricseries'),
        ),
    ]
