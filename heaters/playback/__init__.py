"""The playback cache: temp clips cut from the proxy for in-browser review, and how they are served."""
