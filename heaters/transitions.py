"""The one shape of every state change (DESIGN point 2): an UPDATE that checks the current state itself.

`videos.service` and `clips.service` own their tables' states and call this; zero rows changed means
the row was not in an allowed state (or is gone), reported as InvalidTransition naming the state it is in.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from sqlalchemy import update
from sqlmodel import Session, SQLModel

from heaters.errors import InvalidTransition


def guarded_update(
    session: Session,
    model: type[SQLModel],
    entity: str,
    entity_id: int,
    to: StrEnum,
    allowed: Iterable[StrEnum],
    **values: Any,
) -> None:
    column = model.ingest_state  # type: ignore[attr-defined]
    result = session.execute(
        update(model)
        .where(model.id == entity_id)  # type: ignore[attr-defined]
        .where(column.in_([s.value for s in allowed]))
        .values(ingest_state=to.value, **values)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        row = session.get(model, entity_id, populate_existing=True)
        raise InvalidTransition(entity, entity_id, to.value, row.ingest_state if row else None)  # type: ignore[attr-defined]
