# Written by hand: the plain typed columns that 0004 adopts.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("adoptapp", "0002_encrypt_columns"),
    ]

    operations = [
        migrations.CreateModel(
            name="Typed",
            fields=[
                ("id", models.BigAutoField(
                    auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                )),
                ("number", models.IntegerField()),
                ("day", models.DateField()),
                ("amount", models.DecimalField(decimal_places=2, max_digits=12)),
                ("data", models.JSONField()),
                ("flag", models.BooleanField()),
                ("maybe", models.IntegerField(null=True)),
            ],
        ),
    ]
