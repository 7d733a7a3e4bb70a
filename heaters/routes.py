"""Route constants and URL builders, so pages and links agree."""

from urllib.parse import quote

HOME = "/"
LOGIN = "/login"
VIDEOS = "/videos"
ADMIN = "/admin"


def login_with_next(path: str) -> str:
    return f"{LOGIN}?next={quote(path or HOME, safe='')}"
