// What every page of the crate shares, loaded before the page's own script (app.js) as `seckillPage`: calling
// the API in the crate's envelope, building elements, showing an outcome, formatting times. No framework, no
// build step.
var seckillPage = (function () {
  'use strict';

  function $(id) { return document.getElementById(id); }

  // A caller of the API under `base` (the router's folder, e.g. /exchange): (method, url, headers) resolves with
  // the answer's status and body (null when it is not JSON), and rejects only when no answer came.
  function api(base) {
    return function (method, url, headers) {
      var options = {
        method: method,
        credentials: 'same-origin',
        cache: 'no-store',
        headers: Object.assign({ Accept: 'application/json' }, headers || {})
      };
      return fetch(base + url, options).then(function (response) {
        return response.json().catch(function () { return null; }).then(function (body) {
          return { status: response.status, body: body };
        });
      });
    };
  }

  function element(tag, attributes, text) {
    var node = document.createElement(tag);
    Object.keys(attributes || {}).forEach(function (key) { node.setAttribute(key, attributes[key]); });
    if (text !== undefined) { node.textContent = text; }
    return node;
  }

  function when(ms) { return ms ? new Date(ms).toLocaleString() : ''; }

  // Shows an outcome in the page's #result: `kind` is success, refused or failed; `outcome` is the API's word,
  // kept in data-outcome for scripts and tests.
  function show(kind, text, outcome) {
    var result = $('result');
    result.textContent = text;
    result.className = 'result ' + kind;
    result.setAttribute('data-outcome', outcome || '');
  }

  // Says in `note` that the user must sign in, with a link to the site's sign-in (/signin, the path the host's
  // sign-in is at by convention; `seckill serve --dev-sign-in` serves one) that comes back to this page.
  function signedOut(note, message) {
    note.hidden = false;
    note.textContent = '请先登录 · Please sign in first' + (message ? ' (' + message + ')' : '') + ' ';
    var next = window.location.pathname + window.location.search;
    note.appendChild(element('a', { id: 'sign-in', href: '/signin?next=' + encodeURIComponent(next) }, '登录 · Sign in'));
  }

  return { $: $, api: api, element: element, when: when, show: show, signedOut: signedOut };
})();
