"""The bridge from `assets/review.js` to the server: one event trigger that the script calls with a command.

The script owns the keyboard (it ignores keys while a text field has focus, handles frame stepping, play,
speed and split mode itself) and sends only decisions: `{action, clip, frame}`, where `clip` is the clip
the browser showed and `frame` the source frame on screen when the key went down.
"""

from __future__ import annotations

from typing import Any

from reflex.vars.base import Var
from reflex.vars.object import ObjectVar
from reflex_base.components.component import field
from reflex_base.event import EventHandler
from reflex_components_core.core.window_events import WindowEventListener


def _command_spec(command: ObjectVar[dict[str, Any]]) -> tuple[Var[dict[str, Any]]]:
    return (command,)


class ReviewKeys(WindowEventListener):
    """Hands the script a `send(command)` function once React has mounted the page."""

    on_command: EventHandler[_command_spec] = field(  # type: ignore[type-arg,valid-type]
        doc="Called by assets/review.js with {action, clip, frame}."
    )

    def add_hooks(self) -> list[str | Var[Any]]:
        send = Var.create(self.event_triggers["on_command"])
        return [
            Var(
                f"""
useEffect(() => {{
    if (typeof window === 'undefined') return;
    const send = {send};
    window.__heatersReviewSend = send;
    const detach = window.heatersReview ? window.heatersReview.attach(send) : null;
    return () => {{
        if (window.__heatersReviewSend === send) window.__heatersReviewSend = null;
        if (detach) detach();
    }};
}}, []);
"""
            )
        ]


review_keys = ReviewKeys.create
