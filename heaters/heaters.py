"""Builds the Reflex app: pages, their guards, the plain HTTP routes in front of them, live updates."""

from __future__ import annotations

import reflex as rx

from heaters import live, routes
from heaters.api import create_api
from heaters.pages.admin import AdminState, admin_page
from heaters.pages.home import HomeState, home_page
from heaters.pages.login import login_page
from heaters.pages.videos import VideosState, videos_page
from heaters.settings import get_settings
from heaters.state import AuthState
from heaters_workers.broker import setup_broker

# Messages sent from this process (ingest, retry) go to the configured Redis after each commit.
setup_broker(get_settings().redis_url)

app = rx.App(api_transformer=create_api())
app.add_page(home_page, route=routes.HOME, title="Heaters", on_load=[AuthState.require_login, HomeState.load])
app.add_page(login_page, route=routes.LOGIN, title="Sign in · Heaters", on_load=AuthState.login_on_load)
app.add_page(
    videos_page, route=routes.VIDEOS, title="Videos · Heaters", on_load=[AuthState.require_login, VideosState.load]
)
app.add_page(
    admin_page, route=routes.ADMIN, title="Admin · Heaters", on_load=[AuthState.require_admin, AdminState.load]
)
app.register_lifespan_task(live.listener(VideosState))
