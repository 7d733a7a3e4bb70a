"""Builds the Reflex app: pages, their guards, the plain HTTP routes in front of them, live updates."""

from __future__ import annotations

import logging
import os

import reflex as rx

from heaters import live, logs, routes
from heaters.api import create_api
from heaters.components.layout import NavState
from heaters.pages.admin import AdminState, admin_page
from heaters.pages.clips import ClipsState, clips_page
from heaters.pages.home import HomeState, home_page
from heaters.pages.jobs import JOBS_ROUTE, JobsState, jobs_page
from heaters.pages.login import login_page
from heaters.pages.query import QueryState, query_page
from heaters.pages.review.page import review_page
from heaters.pages.review.state import ReviewState
from heaters.pages.videos import VideosState, videos_page
from heaters.playback import cleanup
from heaters.settings import get_settings
from heaters.state import AuthState
from heaters_workers.broker import setup_broker

log = logging.getLogger(__name__)


def start_process() -> None:
    """Each server process, at start: log lines as LOG_FORMAT says, and messages sent from here (ingest,
    retry) go to the configured Redis after each commit.

    Done at start, not at import: importing the app reads no secret and opens nothing, so the image's
    frontend is built with no configuration at all.
    """
    settings = get_settings()
    logs.configure(settings.log_format)
    setup_broker(settings.redis_url)
    log.info("web.started pid %s", os.getpid(), extra={"log_format": settings.log_format})


app = rx.App(api_transformer=create_api(), stylesheets=["/review.css"])
app.register_lifespan_task(start_process)
signed_in = [AuthState.require_login, NavState.load]
app.add_page(home_page, route=routes.HOME, title="Heaters", on_load=[*signed_in, HomeState.load])
app.add_page(login_page, route=routes.LOGIN, title="Sign in · Heaters", on_load=AuthState.login_on_load)
app.add_page(videos_page, route=routes.VIDEOS, title="Videos · Heaters", on_load=[*signed_in, VideosState.load])
app.add_page(review_page, route=routes.REVIEW, title="Review · Heaters", on_load=[*signed_in, ReviewState.load])
app.add_page(query_page, route=routes.QUERY, title="Similar clips · Heaters", on_load=[*signed_in, QueryState.load])
app.add_page(clips_page, route=routes.CLIPS, title="Clips · Heaters", on_load=[*signed_in, ClipsState.load])
app.add_page(
    admin_page,
    route=routes.ADMIN,
    title="Admin · Heaters",
    on_load=[AuthState.require_admin, NavState.load, AdminState.load],
)

app.add_page(
    jobs_page,
    route=JOBS_ROUTE,
    title="Jobs · Heaters",
    on_load=[AuthState.require_admin, NavState.load, JobsState.load],
)

# Live updates: which states watch while their page is open, and the one Redis subscription.
live.hub.keep_always(NavState)
live.hub.page(routes.VIDEOS, VideosState)
live.hub.page(routes.REVIEW, ReviewState)
live.hub.page(routes.CLIPS, ClipsState)
live.hub.page(JOBS_ROUTE, JobsState)
app.register_lifespan_task(live.listener())
app.register_lifespan_task(cleanup.web_task())
