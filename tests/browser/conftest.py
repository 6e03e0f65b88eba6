"""Fixtures for the admin tests; helpers live in admin_helpers.py."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def superuser(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser(
        "root", "root@example.invalid", "correct horse battery staple"
    )


@pytest.fixture
def client(client: Any, superuser: Any) -> Any:
    """Django's test client, logged in as the superuser."""
    client.force_login(superuser)
    return client
