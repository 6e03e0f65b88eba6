"""Which models and columns a run covers."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from django.apps import apps
from django.db import models, router

from ..contract import EncryptedColumn

# --------------------------------------------------------------------------
# Scope
# --------------------------------------------------------------------------


def _encrypted_fields(model: type[models.Model]) -> list[EncryptedColumn]:
    from ..saving import table_columns

    return list(table_columns(model))


@dataclass(frozen=True)
class Target:
    """A concrete model and its local encrypted fields."""

    model: type[models.Model]
    fields: tuple[EncryptedColumn, ...]

    @property
    def label(self) -> str:
        return self.model._meta.label


def _is_candidate(model: type[models.Model]) -> bool:
    meta = model._meta
    return not (meta.abstract or meta.proxy or meta.swapped)


def find_targets(labels: Sequence[str] = (), using: str = "default") -> list[Target]:
    """Models to rotate: all with encrypted fields, or those named.

    ``labels`` holds ``app_label`` or ``app_label.ModelName`` strings.
    Raises ``LookupError`` for an unknown app or model and ``ValueError`` for
    a named model without encrypted fields.  Models the database router
    keeps off ``using`` are left out.
    """
    chosen: list[type[models.Model]] = []
    if labels:
        for text in labels:
            if "." in text:
                app_label, _, model_name = text.partition(".")
                model = apps.get_model(app_label, model_name)
                if not _is_candidate(model):
                    raise ValueError(f"{model._meta.label} is not a concrete model")
                if not _encrypted_fields(model):
                    raise ValueError(f"{model._meta.label} has no encrypted fields")
                found = [model]
            else:
                config = apps.get_app_config(text)
                found = [
                    m for m in config.get_models()
                    if _is_candidate(m) and _encrypted_fields(m)
                ]
                if not found:
                    raise ValueError(f"app {text!r} has no models with encrypted fields")
            chosen.extend(m for m in found if m not in chosen)
    else:
        chosen = [m for m in apps.get_models() if _is_candidate(m) and _encrypted_fields(m)]
    return [
        Target(m, tuple(_encrypted_fields(m)))
        for m in chosen
        if router.allow_migrate_model(using, m)
    ]
