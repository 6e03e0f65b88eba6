"""``manage.py generate_key``: print fresh keys in ``MCFIELDS_KEYS`` format."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from mcfields.crypto import generate_key


class Command(BaseCommand):
    help = (
        "Print a new random key (32 bytes, URL-safe base64) for settings.MCFIELDS_KEYS. "
        "To rotate, put the new key first and keep the old ones after it."
    )
    # Needs no database and no valid MCFIELDS_KEYS: it is how you get one.
    requires_system_checks: list[str] = []
    requires_migrations_checks = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--count", type=int, default=1, help="how many keys to print, one per line"
        )

    def handle(self, *args: Any, count: int = 1, **options: Any) -> None:
        if count < 1:
            raise CommandError("--count must be at least 1")
        for _ in range(count):
            self.stdout.write(generate_key())
