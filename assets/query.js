// Cards on /query and /clips play on hover and rewind when the pointer leaves (mouseover bubbles,
// mouseenter does not: one listener serves every card, however often the grid is redrawn).
(function () {
  "use strict";
  if (window.heatersHoverPlay) return;
  window.heatersHoverPlay = true;
  function videoOf(target) {
    const card = target && target.closest && target.closest("[data-hover-card], video[data-hover-play]");
    if (!card) return null;
    return card.matches("video") ? card : card.querySelector("video[data-hover-play]");
  }
  document.addEventListener("mouseover", (event) => {
    const video = videoOf(event.target);
    if (video && video.paused) video.play().catch(() => {});
  });
  document.addEventListener("mouseout", (event) => {
    const video = videoOf(event.target);
    if (!video || (event.relatedTarget && videoOf(event.relatedTarget) === video)) return;
    video.pause();
    video.currentTime = 0;
  });
})();
