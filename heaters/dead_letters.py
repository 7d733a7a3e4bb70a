"""Dead-lettered messages: what Dramatiq gave up on after its retries, kept a week in `{queue}.XQ`.

Listing, requeueing and deleting them is shared by /admin/jobs and `heaters jobs dead|requeue|delete`.
Our stages count their own attempts in Postgres, so a requeued message starts a fresh Dramatiq retry
count (as the dashboard does) and its claim decides whether there is still work to do.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import dramatiq

from heaters.errors import NotFound
from heaters.queues import Queue

NAMESPACE = "dramatiq"


def _keys(queue: Queue) -> tuple[str, str]:
    xq = f"{NAMESPACE}:{queue.value}.XQ"
    return xq, f"{xq}.msgs"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def listing(redis: Any, queue: Queue, *, limit: int = 50) -> list[dict[str, Any]]:
    """The newest dead letters of a queue first: id, actor, arguments, when it died."""
    xq, messages = _keys(queue)
    entries = redis.zrevrange(xq, 0, limit - 1, withscores=True)
    if not entries:
        return []
    datas = redis.hmget(messages, [member for member, _ in entries])
    rows = []
    for (member, died_ms), data in zip(entries, datas, strict=True):
        if data is None:  # taken by a concurrent requeue or delete
            continue
        message = dramatiq.Message.decode(data)
        rows.append(
            {
                "queue": queue.value,
                "id": _text(member),
                "actor": message.actor_name,
                "args": list(message.args),
                "dead_since": datetime.fromtimestamp(died_ms / 1000, UTC).isoformat(timespec="seconds"),
            }
        )
    return rows


def _ids(redis: Any, queue: Queue, message_id: str | None) -> list[str]:
    if message_id is not None:
        return [message_id]
    return [_text(member) for member in redis.zrange(_keys(queue)[0], 0, -1)]


def _take(redis: Any, queue: Queue, message_id: str) -> bool:
    """Remove one dead letter; False when it is gone (or another caller took it first)."""
    xq, messages = _keys(queue)
    if not redis.hdel(messages, message_id):
        return False
    redis.zrem(xq, message_id)
    return True


def requeue(redis: Any, queue: Queue, message_id: str | None = None) -> int:
    """Send dead letters (one, or all of the queue's) back to their queue; returns how many went.

    Each is sent before it leaves the dead letters, so a failure (of Redis itself, or of this process)
    can at worst send one twice, which the claims make harmless, and never loses one.
    """
    sent = 0
    for member in _ids(redis, queue, message_id):
        data = redis.hget(_keys(queue)[1], member)
        if data is None:
            if message_id is not None:
                raise NotFound(f"No dead-lettered message {message_id} on {queue.value}.")
            continue
        message = dramatiq.Message.decode(data)
        dramatiq.get_broker().enqueue(message.copy(queue_name=queue.value, options={"retries": 0}))
        _take(redis, queue, member)
        sent += 1
    return sent


def delete(redis: Any, queue: Queue, message_id: str | None = None) -> int:
    """Drop dead letters (one, or all of the queue's) for good; returns how many."""
    dropped = 0
    for member in _ids(redis, queue, message_id):
        if _take(redis, queue, member):
            dropped += 1
        elif message_id is not None:
            raise NotFound(f"No dead-lettered message {message_id} on {queue.value}.")
    return dropped
