"""Column helpers every table shares."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Column, DateTime, func
from sqlmodel import Field


def created_at() -> Any:
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now()),
    )


def updated_at() -> Any:
    return Field(
        default=None,
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=func.now(), onupdate=func.now()),
    )


def optional_time() -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


Timestamp = datetime | None
