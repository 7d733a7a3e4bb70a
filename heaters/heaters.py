"""Builds the Reflex app: pages, their guards, and the plain HTTP routes in front of them."""

from __future__ import annotations

import reflex as rx

from heaters import routes
from heaters.api import create_api
from heaters.pages.admin import AdminState, admin_page
from heaters.pages.home import HomeState, home_page
from heaters.pages.login import login_page
from heaters.state import AuthState

app = rx.App(api_transformer=create_api())
app.add_page(home_page, route=routes.HOME, title="Heaters", on_load=[AuthState.require_login, HomeState.load])
app.add_page(login_page, route=routes.LOGIN, title="Sign in · Heaters", on_load=AuthState.login_on_load)
app.add_page(
    admin_page,
    route=routes.ADMIN,
    title="Admin · Heaters",
    on_load=[AuthState.require_admin, AdminState.load],
)
