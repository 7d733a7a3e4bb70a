"""The /review page: one pending clip at a time, keyboard first (see components.KEYS)."""

from __future__ import annotations

import reflex as rx

from heaters.components.layout import signed_in_page
from heaters.pages.review.components import review_body


@signed_in_page
def review_page() -> rx.Component:
    return review_body()
