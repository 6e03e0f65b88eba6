"""Create or reset the demo superuser (user ``demo``, password ``demo``).

Demo only: ``make serve`` runs it so a newcomer can log in to the admin.  It
refuses to run unless ``DEBUG`` is on, so a copy of this project with real
settings never gets a well-known password.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

USERNAME = "demo"
PASSWORD = "demo"


class Command(BaseCommand):
    help = "Create or reset the demo admin user demo/demo (demo project only; needs DEBUG)."

    def add_arguments(self, parser):
        parser.add_argument("--database", default="default")

    def handle(self, *args, database="default", **options):
        if not settings.DEBUG:
            raise CommandError("demo_superuser only runs with DEBUG=True (demo project only).")
        User = get_user_model()
        manager = User._default_manager.db_manager(database)
        user = manager.filter(**{User.USERNAME_FIELD: USERNAME}).first()
        created = user is None
        if created:
            user = User(**{User.USERNAME_FIELD: USERNAME})
        user.is_staff = True
        user.is_superuser = True
        user.is_active = True
        user.set_password(PASSWORD)
        user.save(using=database)
        verb = "created" if created else "reset"
        self.stdout.write(f"Demo superuser {verb}: user {USERNAME!r} (demo only).")
