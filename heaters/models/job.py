"""`job_claims`: the database's record of pipeline work (DESIGN point 4).

One row per (stage, entity) for the entity's lifetime. `queued` means a message is on its way (until
`lease_until`); `running` is a live claim while `lease_until` is in the future, extended by the job's
heartbeat; an expired lease (a crashed worker, a lost message) is work the Dispatcher hands out again.
`retrying` waits for `next_attempt_at`; `failed` waits for a human (`heaters retry`).
"""

from __future__ import annotations

from sqlalchemy import CheckConstraint, Column, Index, Text, text
from sqlmodel import Field, SQLModel

from heaters.models._base import Timestamp, created_at, optional_time, updated_at
from heaters.models.states import ClaimState, check_in


class JobClaim(SQLModel, table=True):
    __tablename__ = "job_claims"
    __table_args__ = (
        CheckConstraint(check_in("state", ClaimState), name="job_claims_state_check"),
        CheckConstraint("attempts >= 0", name="job_claims_attempts_check"),
        Index("job_claims_stage_entity_key", "stage", "entity_id", unique=True),
        Index("job_claims_state_lease_idx", "state", "lease_until"),
    )

    id: int | None = Field(default=None, primary_key=True)
    stage: str = Field(sa_column=Column(Text, nullable=False))
    entity_id: int
    state: str = Field(sa_column=Column(Text, nullable=False))
    attempts: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
    worker_id: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    lease_until: Timestamp = optional_time()
    next_attempt_at: Timestamp = optional_time()
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    inserted_at: Timestamp = created_at()
    updated_at: Timestamp = updated_at()
