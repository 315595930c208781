# The health results list at scale (issue 13): its order, alone and under the status filter or
# the search for a status. Numbered 0009 after 0007 (another change of issue 13
# adds an ops 0008); chained after it when both are in.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("ops", "0007_ops_admin_indexes"),
    ]

    operations = [
        # The whole order (with -id): SQLite then walks this index for a check's results
        # rather than the order's index through every row (a check with no results).
        migrations.RemoveIndex(
            model_name="healthcheckresult", name="ops_healthc_check_n_f37acb_idx"
        ),
        migrations.AddIndex(
            model_name="healthcheckresult",
            index=models.Index(
                fields=["check_name", "-checked_at", "-id"], name="ops_result_check_idx"
            ),
        ),
        migrations.AddIndex(
            model_name="healthcheckresult",
            index=models.Index(fields=["-checked_at", "-id"], name="ops_result_latest_idx"),
        ),
        migrations.AddIndex(
            model_name="healthcheckresult",
            index=models.Index(
                fields=["status", "-checked_at", "-id"], name="ops_result_status_idx"
            ),
        ),
    ]
