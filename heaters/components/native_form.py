"""A plain HTML form that really POSTs (rx.el.form always prevents the default submit)."""

from __future__ import annotations

import reflex as rx
from reflex.components.el.elements.base import BaseHTML


class NativeForm(BaseHTML):
    tag = "form"
    action: rx.Var[str]
    method: rx.Var[str]


def native_form(*children: rx.Component, action: str, **props: object) -> rx.Component:
    return NativeForm.create(*children, action=action, method="post", **props)
