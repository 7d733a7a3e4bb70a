// The review page's player and keyboard, in the browser (no server round trip for any of it):
// which frame is on screen (requestVideoFrameCallback, never currentTime alone), frame stepping,
// split mode, play/pause, speed; decisions (and the frame to split at) go to the server through `send`,
// which the page's Hotkeys component hands over once React has mounted it.
(function () {
  "use strict";
  if (window.heatersReview) return;

  const SPEEDS = [0.25, 0.5, 0.75, 1, 1.5, 2, 4];
  const ACTIONS = { a: "approve", s: "skip", d: "archive", m: "merge", g: "group" };
  const state = {
    send: null,
    current: null, // the <video> showing the current clip
    currentClip: 0,
    target: null, // the local frame a step is seeking to (steps chain from it, not from the last shown)
    frame: -1, // absolute source frame on screen
    split: false,
    muted: true,
    speed: Number(window.localStorage.getItem("heaters.speed")) || 1,
  };

  function player() {
    return document.querySelector('video[data-testid="player"]');
  }

  function clipOf(video) {
    const d = video.dataset;
    const num = Number(d.fpsNum);
    const den = Number(d.fpsDen) || 1;
    return {
      id: Number(d.clipId) || 0,
      start: Number(d.startFrame) || 0,
      frames: Math.max(1, (Number(d.endFrame) || 0) - (Number(d.startFrame) || 0)),
      fps: num > 0 ? num / den : 0,
    };
  }

  // A presented frame's mediaTime is its own timestamp: round it.
  function localFrame(video, mediaTime) {
    const clip = clipOf(video);
    return Math.min(clip.frames - 1, Math.max(0, Math.round(mediaTime * clip.fps)));
  }

  // A playback position (currentTime) lies inside the frame shown at it: floor it.
  function frameAtTime(video, time) {
    const clip = clipOf(video);
    return Math.min(clip.frames - 1, Math.max(0, Math.floor(time * clip.fps + 1e-6)));
  }

  function show(video, local) {
    const clip = clipOf(video);
    state.frame = clip.start + local;
    window.__frame = state.frame;
    const label = document.querySelector('[data-testid="current-frame"]');
    if (label) label.textContent = "Frame " + state.frame.toLocaleString("en-US");
    const offset = document.querySelector('[data-testid="clip-frame"]');
    if (offset) offset.textContent = local + 1 + " / " + clip.frames;
  }

  function onFrames(video) {
    if (!video.requestVideoFrameCallback) return;
    const callback = (_now, meta) => {
      if (video !== state.current) return;
      show(video, localFrame(video, meta.mediaTime));
      video.requestVideoFrameCallback(callback);
    };
    video.requestVideoFrameCallback(callback);
  }

  function seekLocal(video, local) {
    const clip = clipOf(video);
    if (!clip.fps) return;
    state.target = Math.min(clip.frames - 1, Math.max(0, local));
    video.currentTime = (state.target + 0.5) / clip.fps; // mid-frame: safe against rounding either way
  }

  function placeholder() {
    state.frame = -1;
    window.__frame = -1;
    const label = document.querySelector('[data-testid="current-frame"]');
    if (label) label.textContent = "Frame …";
    const offset = document.querySelector('[data-testid="clip-frame"]');
    if (offset) offset.textContent = "";
  }

  function start(video) {
    // A paused, just-loaded video presents no frame callback for its first frame: seek to show it.
    if (video.readyState < 2) {
      placeholder(); // still loading: never show the last clip's frame for this one
      return;
    }
    show(video, frameAtTime(video, video.currentTime));
    if (state.split) {
      if (state.target === null) seekLocal(video, frameAtTime(video, video.currentTime));
    } else {
      video.play().catch(() => {});
    }
  }

  function adopt() {
    const video = player();
    const clip = video ? clipOf(video).id : 0;
    if (video === state.current && clip === state.currentClip) return;
    if (state.current && state.current !== video) {
      state.current.pause();
      state.current.currentTime = 0; // a clip shown again (after an undo) starts from its beginning
    }
    if (clip !== state.currentClip) setSplit(false);
    state.current = video;
    state.currentClip = clip;
    state.target = null;
    if (!video) {
      state.frame = -1;
      return;
    }
    video.muted = state.muted;
    video.playbackRate = state.speed;
    video.loop = !state.split;
    onFrames(video);
    start(video);
  }

  function setSplit(on) {
    state.split = on;
    document.body.dataset.splitMode = on ? "on" : "off";
    const video = state.current;
    if (!video) return;
    video.loop = !on;
    if (on) video.pause();
  }

  function step(delta) {
    const video = state.current;
    if (!video || video.readyState < 1) return;
    if (!state.split) setSplit(true); // the first press pauses and enters split mode
    if (!video.paused) {
      video.pause();
      state.target = null;
    }
    const base = state.target ?? frameAtTime(video, video.currentTime);
    seekLocal(video, base + delta);
  }

  function togglePlay() {
    const video = state.current;
    if (!video) return;
    if (video.paused) {
      state.target = null;
      if (state.split) setSplit(false);
      video.play().catch(() => {});
    } else {
      video.pause();
    }
  }

  function changeSpeed(direction) {
    const index = SPEEDS.indexOf(state.speed);
    const next = SPEEDS[Math.min(SPEEDS.length - 1, Math.max(0, (index < 0 ? 3 : index) + direction))];
    state.speed = next;
    window.localStorage.setItem("heaters.speed", String(next));
    if (state.current) state.current.playbackRate = next;
    const label = document.querySelector('[data-testid="speed"]');
    if (label) label.textContent = next + "×";
  }

  function command(action, extra) {
    if (!state.send) return;
    state.send(Object.assign({ action: action, clip: state.currentClip, frame: state.frame }, extra || {}));
  }

  // The timeline: drawn from the JSON in #timeline's data-timeline, the current clip from data-current.
  // Each change updates only the segments and cuts that differ (keyed by clip id and cut frame): with a
  // room of reviewers on one long video, the string changes several times a second.
  let drawn = null;
  function label(n) {
    return n.toLocaleString("en-US");
  }
  function place(el, props) {
    for (const [key, value] of Object.entries(props.style)) if (el.style[key] !== value) el.style[key] = value;
    for (const [key, value] of Object.entries(props.data)) if (el.dataset[key] !== value) el.dataset[key] = value;
    if (el.className !== props.className) el.className = props.className;
    if (el.title !== props.title) el.title = props.title;
  }
  function sync(box, map, wanted, make) {
    for (const [key, el] of map) {
      if (!wanted.has(key)) {
        el.remove();
        map.delete(key);
      }
    }
    for (const [key, props] of wanted) {
      let el = map.get(key);
      if (!el) {
        el = document.createElement("div");
        map.set(key, el);
        box.appendChild(el);
      }
      place(el, make(props));
    }
  }
  function drawTimeline() {
    const box = document.getElementById("timeline");
    if (!box) return;
    const code = box.dataset.timeline || "";
    const current = box.dataset.current || "";
    if (!drawn || drawn.box !== box) {
      box.replaceChildren();
      drawn = { box: box, code: null, current: null, segments: new Map(), cuts: new Map() };
    }
    if (drawn.code !== code) {
      const data = code ? JSON.parse(code) : { n: 1, c: [], k: [] };
      const total = data.n || 1;
      const top = Math.max(1e-9, ...data.k.map((c) => c[1] || 0));
      const segments = new Map(data.c.map((c) => [String(c[0]), c]));
      sync(box, drawn.segments, segments, ([id, start, end, tone]) => ({
        className: "review-segment" + (String(id) === current ? " current" : ""),
        style: { left: (100 * start) / total + "%", width: (100 * (end - start)) / total + "%" },
        data: { testid: "timeline-segment", clipId: String(id), tone: tone },
        title: "Clip " + id + ": frames " + label(start) + " to " + label(end - 1) + " (" + tone + ")",
      }));
      const cuts = new Map(data.k.map((c) => [String(c[0]), c]));
      sync(box, drawn.cuts, cuts, ([frame, score, reviewer]) => ({
        className: reviewer ? "review-cut reviewer" : "review-cut",
        style: {
          left: (100 * frame) / total + "%",
          height: score === null ? "100%" : 40 + 60 * Math.min(1, score / top) + "%",
        },
        data: {},
        title: "Cut at frame " + label(frame) + (score === null ? " (reviewer)" : ", score " + score.toFixed(2)),
      }));
      drawn.code = code;
      drawn.current = null;
    }
    if (drawn.current !== current) {
      for (const [id, el] of drawn.segments) el.classList.toggle("current", id === current);
      drawn.current = current;
    }
  }

  function onTimelineClick(event) {
    const segment = event.target.closest && event.target.closest(".review-segment");
    if (segment && segment.dataset.tone === "pending") command("open", { open: Number(segment.dataset.clipId) });
  }

  function typing(event) {
    const el = event.target;
    return Boolean(el && (el.isContentEditable || /^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName || "")));
  }

  function onKey(event) {
    if (typing(event) || !document.querySelector("[data-review-page]")) return;
    const key = event.key;
    if ((event.ctrlKey || event.metaKey) && !event.altKey && (key === "z" || key === "Z")) {
      event.preventDefault();
      if (!event.repeat) command("undo");
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    switch (key) {
      case "ArrowLeft":
      case "ArrowRight":
        event.preventDefault();
        step((key === "ArrowRight" ? 1 : -1) * (event.shiftKey ? 10 : 1));
        return;
      case " ":
        event.preventDefault(); // no page scroll, no click on a focused button
        if (!event.repeat) togglePlay();
        return;
      case "[":
      case "]":
        changeSpeed(key === "]" ? 1 : -1);
        return;
      case "Escape":
        if (state.split) {
          setSplit(false);
          togglePlay();
        }
        command("escape");
        return;
      case "Enter":
        if (state.split && !event.repeat) {
          event.preventDefault();
          command("split");
        }
        return;
      case "?":
        if (!event.repeat) command("help");
        return;
      default:
        break;
    }
    const action = ACTIONS[key.toLowerCase()];
    if (action && !event.repeat) {
      event.preventDefault();
      command(action);
    }
  }

  window.heatersReview = {
    attach(send) {
      state.send = send;
      adopt();
      return () => {
        if (state.send === send) state.send = null;
      };
    },
    command: command,
    enterSplit() {
      if (!state.split) setSplit(true);
    },
    toggleMute() {
      state.muted = !state.muted;
      if (state.current) state.current.muted = state.muted;
      return state.muted;
    },
    get frame() {
      return state.frame;
    },
    get split() {
      return state.split;
    },
    // What the player believes, for a failing test's message.
    get debug() {
      const video = state.current;
      return {
        clip: state.currentClip,
        frame: state.frame,
        target: state.target,
        split: state.split,
        seeking: video ? video.seeking : null,
        paused: video ? video.paused : null,
        readyState: video ? video.readyState : null,
        currentTime: video ? video.currentTime : null,
      };
    },
    // True once the frame a step asked for is on screen (nothing is still seeking).
    get settled() {
      const video = state.current;
      if (!video || video.seeking) return false;
      if (state.target === null) return true;
      return state.frame === clipOf(video).start + state.target;
    },
  };

  window.addEventListener("keydown", onKey);
  // Media events do not bubble; catch them on the way down.
  document.addEventListener(
    "loadeddata",
    (event) => {
      if (event.target === state.current) start(state.current);
    },
    true,
  );
  // A paused seek that lands on the frame already presented gets no frame callback: the seek itself
  // says which frame is on screen now (seeks aim at mid-frame, so the position names it exactly).
  document.addEventListener(
    "seeked",
    (event) => {
      const video = state.current;
      if (event.target === video && video.paused) show(video, frameAtTime(video, video.currentTime));
    },
    true,
  );
  document.addEventListener(
    "play",
    (event) => {
      // A late event from a play() that a step has since paused must not drop the step's target.
      if (event.target === state.current && !state.current.paused) state.target = null;
    },
    true,
  );
  document.addEventListener("click", onTimelineClick);
  new MutationObserver(() => {
    adopt();
    drawTimeline();
  }).observe(document.documentElement, {
    subtree: true,
    attributes: true,
    childList: true,
    attributeFilter: ["data-testid", "data-clip-id", "src", "data-timeline", "data-current"],
  });
  drawTimeline();
  if (window.__heatersReviewSend) window.heatersReview.attach(window.__heatersReviewSend);
})();
