"""`users` and `review_actions`: who reviews, and the log that undo inverts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, Column, ForeignKey, Index, Integer, Text, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import Field, SQLModel

from heaters.models._base import Timestamp, created_at, optional_time
from heaters.models.states import ReviewActionKind, Role, check_in


class User(SQLModel, table=True):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(check_in("role", Role), name="users_role_check"),
        CheckConstraint("username ~ '^[A-Za-z0-9_.-]{1,64}$'", name="users_username_check"),
        Index("users_username_lower_key", text("lower(username)"), unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(sa_column=Column(Text, nullable=False))
    password_hash: str = Field(sa_column=Column(Text, nullable=False))  # argon2id, encoded with its parameters
    role: str = Field(
        default=Role.REVIEWER.value,
        sa_column=Column(Text, nullable=False, server_default=Role.REVIEWER.value),
    )
    is_active: bool = Field(default=True, sa_column_kwargs={"server_default": text("true")})
    last_login_at: Timestamp = optional_time()
    inserted_at: Timestamp = created_at()


class ReviewAction(SQLModel, table=True):
    __tablename__ = "review_actions"
    __table_args__ = (
        CheckConstraint(check_in("action", ReviewActionKind), name="review_actions_action_check"),
        Index("review_actions_user_id_id_idx", "user_id", "id"),
    )

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    user_id: int = Field(sa_column=Column(Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False))
    action: str = Field(sa_column=Column(Text, nullable=False))
    clip_ids: list[int] = Field(sa_column=Column(ARRAY(Integer), nullable=False))
    # Each clip's columns before and after, and the cuts added or removed: enough to invert the action.
    before: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    after: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    cut_ops: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=Column(JSONB, nullable=False, server_default=text("'[]'::jsonb"))
    )
    undone_at: Timestamp = optional_time()
    created_at: Timestamp = created_at()
