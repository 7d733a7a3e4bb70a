"""Which keyframes and which embedding a clip gets by default: pure rules over the settings."""

from __future__ import annotations

from heaters.models.states import GenerationStrategy, KeyframeStrategy
from heaters.settings import Settings

# Several keyframes are averaged into one vector; a single keyframe is its own vector.
STRATEGY_FOR_KEYFRAMES: dict[KeyframeStrategy, GenerationStrategy] = {
    KeyframeStrategy.MULTI: GenerationStrategy.KEYFRAME_MULTI_AVG,
    KeyframeStrategy.MIDPOINT: GenerationStrategy.KEYFRAME_SINGLE,
}

# Where in the clip each keyframe is taken, as a fraction of its length.
KEYFRAME_POSITIONS: dict[KeyframeStrategy, tuple[float, ...]] = {
    KeyframeStrategy.MULTI: (0.25, 0.50, 0.75),
    KeyframeStrategy.MIDPOINT: (0.50,),
}


def keyframe_strategy(settings: Settings) -> KeyframeStrategy:
    return KeyframeStrategy(settings.keyframe_strategy)


def generation_strategy(settings: Settings) -> GenerationStrategy:
    return STRATEGY_FOR_KEYFRAMES[keyframe_strategy(settings)]


def keyframe_frames(start_frame: int, end_frame: int, strategy: KeyframeStrategy) -> list[int]:
    """The clip-local frame of each keyframe: distinct, inside [0, length), in order."""
    length = end_frame - start_frame
    if length <= 0:
        raise ValueError("a clip has at least one frame")
    frames = [min(length - 1, int(length * p)) for p in KEYFRAME_POSITIONS[strategy]]
    return sorted(set(frames))
