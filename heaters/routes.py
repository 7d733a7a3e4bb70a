"""Route constants and URL builders, so pages and links agree."""

from urllib.parse import quote

HOME = "/"
LOGIN = "/login"
VIDEOS = "/videos"
REVIEW = "/review"
ADMIN = "/admin"
QUERY = "/query"
CLIPS = "/clips"


def login_with_next(path: str) -> str:
    return f"{LOGIN}?next={quote(path or HOME, safe='')}"


def review_clip(clip_id: int) -> str:
    return f"{REVIEW}?clip={clip_id}"


def review_video(video_id: int) -> str:
    return f"{REVIEW}?video={video_id}"


def query_clip(clip_id: int) -> str:
    return f"{QUERY}?clip={clip_id}"
