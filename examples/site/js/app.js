// Lantern Street Photo Club: a footer clock, a countdown to the next meeting, and a
// keyboard-friendly lightbox for the gallery. No dependencies, no network requests.
"use strict";

(function () {
  // The clock: redraw on the minute boundary instead of polling every second.
  function startClock() {
    var el = document.getElementById("clock");
    if (!el) return;
    function tick() {
      var now = new Date();
      el.textContent = now.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      el.setAttribute("datetime", now.toISOString());
      setTimeout(tick, 60000 - (now.getSeconds() * 1000 + now.getMilliseconds()));
    }
    tick();
  }

  // Meetings are on the first Thursday of each month at 19:00 local time.
  function firstThursday(year, month) {
    var d = new Date(year, month, 1, 19, 0, 0);
    d.setDate(1 + ((4 - d.getDay() + 7) % 7));
    return d;
  }

  function nextMeeting(now) {
    var candidate = firstThursday(now.getFullYear(), now.getMonth());
    // A meeting lasts two hours; until it ends it is still "the next meeting".
    if (candidate.getTime() + 2 * 3600 * 1000 <= now.getTime()) {
      candidate = firstThursday(now.getFullYear(), now.getMonth() + 1);
    }
    return candidate;
  }

  function startCountdown() {
    var dateEl = document.getElementById("next-meeting-date");
    var countEl = document.getElementById("countdown");
    if (!dateEl || !countEl) return;
    var now = new Date();
    var meeting = nextMeeting(now);
    dateEl.textContent = meeting.toLocaleDateString([], {
      weekday: "long", day: "numeric", month: "long"
    });
    var days = Math.floor((meeting - now) / 86400000);
    countEl.textContent = meeting <= now ? "(happening now!)"
      : days === 0 ? "(tonight!)"
      : days === 1 ? "(tomorrow)"
      : "(in " + days + " days)";
  }

  function startLightbox() {
    var gallery = document.querySelector("[data-lightbox]");
    var box = document.getElementById("lightbox");
    if (!gallery || !box) return;
    var links = Array.prototype.slice.call(gallery.querySelectorAll("a[href]"));
    var image = document.getElementById("lightbox-image");
    var caption = document.getElementById("lightbox-caption");
    var current = -1;
    var opener = null;

    function show(index) {
      current = (index + links.length) % links.length;
      var link = links[current];
      var thumb = link.querySelector("img");
      image.src = link.href;
      image.alt = thumb ? thumb.alt : "";
      caption.textContent = link.getAttribute("data-caption") || "";
    }

    function open(index, from) {
      opener = from;
      show(index);
      box.hidden = false;
      box.querySelector(".lightbox-close").focus();
      document.addEventListener("keydown", onKey);
    }

    function close() {
      box.hidden = true;
      image.removeAttribute("src");
      document.removeEventListener("keydown", onKey);
      if (opener) opener.focus();  // return focus where the reader was
    }

    function onKey(event) {
      if (event.key === "Escape") close();
      else if (event.key === "ArrowRight") show(current + 1);
      else if (event.key === "ArrowLeft") show(current - 1);
      else return;
      event.preventDefault();
    }

    links.forEach(function (link, index) {
      link.addEventListener("click", function (event) {
        // Let modified clicks open the full image in a new tab as usual.
        if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
        event.preventDefault();
        open(index, link);
      });
    });
    box.querySelector(".lightbox-close").addEventListener("click", close);
    box.querySelector(".lightbox-next").addEventListener("click", function () { show(current + 1); });
    box.querySelector(".lightbox-prev").addEventListener("click", function () { show(current - 1); });
    box.addEventListener("click", function (event) {
      if (event.target === box) close();  // a click on the backdrop closes
    });
  }

  startClock();
  startCountdown();
  startLightbox();
})();
