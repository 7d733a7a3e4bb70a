"""Reflex's own configuration. Production mode serves frontend, API and websocket on one port."""

import reflex as rx

from heaters.settings import WebSettings

web = WebSettings()

config = rx.Config(
    app_name="heaters",
    # Pinning the port makes a taken port an error instead of a silent move to the next one.
    frontend_port=web.port,
    backend_port=web.port,
    backend_host=web.bind_host,
    # Reflex's default "*" with credentials would let any site read our cookie-protected routes.
    cors_allowed_origins=web.origins,
    show_built_with_reflex=False,
    telemetry_enabled=False,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(appearance="light", accent_color="orange"))],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
