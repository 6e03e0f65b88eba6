# AlterFields from makemigrations; the EncryptColumn lines added by hand.
#
# Each AlterField turns the typed column into a text column holding the
# database's text form of each value ("42", "2026-12-02", JSON text);
# EncryptColumn then seals those values.  Reversed, DecryptColumn writes
# each value back in the base field's database form, and the reversed
# AlterField casts the text column back to its type.

from django.db import migrations

import mcfields.fields
import mcfields.operations

FIELDS = {
    "number": mcfields.fields.EncryptedIntegerField(),
    "day": mcfields.fields.EncryptedDateField(),
    "amount": mcfields.fields.EncryptedDecimalField(decimal_places=2, max_digits=12),
    "data": mcfields.fields.EncryptedJSONField(),
    "flag": mcfields.fields.EncryptedBooleanField(),
    "maybe": mcfields.fields.EncryptedIntegerField(null=True),
}


class Migration(migrations.Migration):
    # Atomic on purpose (unlike 0002): the batches are savepoints of the
    # migration's transaction.

    dependencies = [
        ("adoptapp", "0003_typed"),
    ]

    operations = [
        *(migrations.AlterField(model_name="typed", name=name, field=field)
          for name, field in FIELDS.items()),
        *(mcfields.operations.EncryptColumn("typed", name, batch_size=7) for name in FIELDS),
    ]
