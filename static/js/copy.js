// "Copy" buttons: <button data-copy-target="ID"> copies the text of the element #ID.
// No inline script, so it works under a strict Content-Security-Policy.
(function () {
  "use strict";
  function status(id, text) {
    var el = document.querySelector('[data-copy-status="' + id + '"]');
    if (el) { el.textContent = text; }
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("[data-copy-target]");
    if (!button) { return; }
    var id = button.getAttribute("data-copy-target");
    var source = document.getElementById(id);
    if (!source) { return; }
    var text = source.textContent;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { status(id, "Copied."); },
        function () { status(id, "Select the text and copy it by hand."); }
      );
      return;
    }
    // Plain http (the local demo): select the text so one keystroke copies it.
    var range = document.createRange();
    range.selectNodeContents(source);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    status(id, document.execCommand && document.execCommand("copy") ? "Copied." : "Selected: press Ctrl+C to copy.");
  });
})();
