/* The dashboard's automatic refresh (docs/product.md: "refreshed automatically every 5 minutes").
 *
 * Every N seconds (data-auto-refresh on .dashboard) it fetches this same page and swaps
 * each [data-refresh-section] whose HTML changed, in one go: no reload, no flicker, the
 * scroll position, open tables and keyboard focus stay where they were. It is an external
 * file, so it runs under the strict Content-Security-Policy (script-src 'self').
 * Without JavaScript the page is complete; it just does not refresh by itself.
 */
(function () {
  "use strict";

  /* Charts: one Tab stop per chart, the arrow keys (and Home/End) move between its bars.
   * Without this script every bar is its own Tab stop, which still works, just slowly. */
  function rovingBars(scope) {
    scope.querySelectorAll(".chart__bars").forEach(function (group) {
      var bars = Array.prototype.slice.call(group.querySelectorAll(".bar[tabindex]"));
      if (!bars.length) {
        return;
      }
      bars.forEach(function (bar, i) {
        bar.setAttribute("tabindex", i === bars.length - 1 ? "0" : "-1");
      });
      group.addEventListener("keydown", function (event) {
        var i = bars.indexOf(event.target);
        if (i < 0) {
          return;
        }
        var next = { ArrowLeft: i - 1, ArrowRight: i + 1, Home: 0, End: bars.length - 1 }[event.key];
        if (next === undefined || next < 0 || next >= bars.length) {
          return;
        }
        event.preventDefault();
        bars[i].setAttribute("tabindex", "-1");
        bars[next].setAttribute("tabindex", "0");
        bars[next].focus();
      });
    });
  }
  rovingBars(document);

  var root = document.querySelector(".dashboard[data-auto-refresh]");
  if (!root || !window.fetch || !window.DOMParser) {
    return;
  }
  var seconds = parseInt(root.getAttribute("data-auto-refresh"), 10);
  if (!(seconds > 0)) {
    return;
  }
  var status = document.getElementById("refresh-status");
  var busy = false;
  var due = false; // a refresh came due while the tab was hidden
  var stopped = false;

  // Routine updates are only announced to screen readers; problems are shown to everyone.
  function say(text, problem) {
    if (status) {
      status.textContent = text;
      status.className = problem ? "notice notice--warning" : "visually-hidden";
    }
  }

  // Keep what the person was doing: open <details> and the focused element (by id or bar key).
  function focusKey(el) {
    if (!el || el === document.body) {
      return null;
    }
    if (el.id) {
      return "#" + el.id;
    }
    var day = el.getAttribute("data-day");
    if (day) {
      return '[data-day="' + day + '"]';
    }
    var month = el.getAttribute("data-month");
    if (month) {
      return '[data-month="' + month + '"]';
    }
    return null;
  }

  function swap(html) {
    var fresh = new DOMParser().parseFromString(html, "text/html");
    var changed = 0;
    document.querySelectorAll("[data-refresh-section]").forEach(function (current) {
      var next = fresh.getElementById(current.id);
      if (!next || next.innerHTML === current.innerHTML) {
        return;
      }
      var active = current.contains(document.activeElement) ? focusKey(document.activeElement) : null;
      current.querySelectorAll("details[id][open]").forEach(function (details) {
        var twin = next.querySelector("#" + details.id);
        if (twin) {
          twin.setAttribute("open", "");
        }
      });
      current.replaceChildren.apply(current, Array.prototype.slice.call(next.childNodes).map(function (node) {
        return document.importNode(node, true);
      }));
      rovingBars(current);
      if (active) {
        var target = current.querySelector(active);
        if (target) {
          if (target.classList.contains("bar")) {
            current.querySelectorAll(".chart__bars .bar").forEach(function (bar) {
              bar.setAttribute("tabindex", bar === target ? "0" : "-1");
            });
          }
          target.focus({ preventScroll: true });
        }
      }
      changed += 1;
    });
    return changed;
  }

  function refresh() {
    if (busy || stopped) {
      return;
    }
    if (document.hidden) {
      due = true;
      return;
    }
    busy = true;
    due = false;
    fetch(window.location.href, {
      credentials: "same-origin",
      cache: "no-store",
      // X-Auto-Refresh: this request is not the person's activity, so it must not extend
      // their idle session (portal.middleware.SessionActivityMiddleware).
      headers: { "X-Requested-With": "XMLHttpRequest", "X-Auto-Refresh": "1" },
    })
      .then(function (response) {
        // A redirect elsewhere means the session ended (login page) or the license closed.
        var url = new URL(response.url, window.location.href);
        if (response.redirected && url.pathname !== window.location.pathname) {
          stopped = true;
          say("Your session has ended. Reload the page to log in again.", true);
          return null;
        }
        if (!response.ok) {
          throw new Error("HTTP " + response.status);
        }
        return response.text();
      })
      .then(function (html) {
        if (html === null) {
          return;
        }
        if (swap(html) > 0) {
          say("Dashboard data updated.", false);
        } else if (status && status.className !== "visually-hidden") {
          say("", false); // an earlier problem is over
        }
      })
      .catch(function () {
        // Keep showing the last data; the next tick tries again.
        say("Could not refresh the dashboard data; showing the last figures.", true);
      })
      .then(function () {
        busy = false;
      });
  }

  window.setInterval(refresh, seconds * 1000);
  document.addEventListener("visibilitychange", function () {
    if (!document.hidden && due) {
      refresh();
    }
  });
})();
