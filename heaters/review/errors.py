"""Why a review action or an undo was refused: each error names the clip and says what to do."""

from __future__ import annotations

from heaters.errors import HeatersError


class ReviewError(HeatersError):
    """A refused action; the message is shown to the reviewer as it is."""

    def __init__(self, message: str, *, clip_id: int | None = None) -> None:
        super().__init__(message)
        self.clip_id = clip_id


class ClipGone(ReviewError):
    pass


class ClipNotPending(ReviewError):
    pass


class NotYourLease(ReviewError):
    pass


class ActionUnavailable(ReviewError):
    """Merge or group with no suitable preceding clip; a split at a frame that cannot be split."""


class NothingToUndo(ReviewError):
    pass


class UndoRefused(ReviewError):
    pass
