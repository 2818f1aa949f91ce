// Sizes the live widget embeds (iframe.pw-embed) to their content, so no widget is clipped and no card's
// detail needs scrolling inside the frame. Each page saved by prisma_widgets posts its content height to
// the page around it when it is framed ({prisma_widgets: "height", height}); only messages that come from
// one of this page's embed frames are used, and the height is clamped to a sane range. The tutorials' widgets
// (docs/hooks.py) are the same saved pages in sandboxed <iframe srcdoc class="pw-embed pw-static">.
(function () {
  "use strict";
  var BORDER = 2; // the frames' 1 px border, top and bottom (Material lays iframes out border-box)
  window.addEventListener("message", function (ev) {
    var data = ev.data;
    if (!data || data.prisma_widgets !== "height") return;
    var h = Number(data.height);
    if (!isFinite(h) || h <= 0) return;
    var frames = document.querySelectorAll("iframe.pw-embed");
    for (var i = 0; i < frames.length; i++) {
      if (frames[i].contentWindow !== ev.source) continue;
      frames[i].style.height = Math.round(Math.min(Math.max(h + BORDER, 120), 8000)) + "px";
      frames[i].setAttribute("data-fitted", String(Math.round(h)));
    }
  });
  // a frame that reported before this script ran (the tutorials' <iframe srcdoc> load with the page) reports again
  var ask = document.querySelectorAll("iframe.pw-embed");
  for (var j = 0; j < ask.length; j++) {
    if (ask[j].contentWindow) ask[j].contentWindow.postMessage({ prisma_widgets: "height?" }, "*");
  }
})();
