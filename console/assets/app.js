// Copy buttons for the Tokensmith console. A button with data-copy="ID" copies the text of the
// element with that id. The buttons start hidden and this script shows them, so without
// JavaScript nobody meets a button that does nothing: the values are plain, selectable text.
(function () {
  'use strict';

  var status = document.getElementById('copy-status');

  function say(text) {
    if (status) {
      status.textContent = '';
      // A new text node is announced even when it repeats the last message.
      window.setTimeout(function () { status.textContent = text; }, 50);
    }
  }

  // Older browsers and pages served over plain HTTP from another host have no async clipboard:
  // select the text and use the legacy copy command.
  function legacyCopy(el) {
    var range = document.createRange();
    range.selectNodeContents(el);
    var sel = window.getSelection();
    sel.removeAllRanges();
    sel.addRange(range);
    var ok = false;
    try { ok = document.execCommand('copy'); } catch (e) { ok = false; }
    return ok;
  }

  function copied(button) {
    var label = button.textContent;
    button.textContent = 'Copied';
    say('Copied to the clipboard.');
    window.setTimeout(function () { button.textContent = label; }, 2000);
  }

  document.querySelectorAll('button[data-copy]').forEach(function (button) {
    var el = document.getElementById(button.getAttribute('data-copy'));
    if (!el) { return; }
    button.hidden = false;
    button.addEventListener('click', function () {
      var text = el.textContent.trim();
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(text).then(function () { copied(button); }, function () {
          if (legacyCopy(el)) { copied(button); } else { say('Select the text and copy it.'); }
        });
      } else if (legacyCopy(el)) {
        copied(button);
      } else {
        say('Select the text and copy it.');
      }
    });
  });
})();
