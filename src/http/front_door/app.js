// The front door: an entrance that asks for an id (a lottery's campaign) goes to its path with the id in it.
(function () {
  'use strict';
  Array.prototype.forEach.call(document.querySelectorAll('form[data-path]'), function (form) {
    form.addEventListener('submit', function (event) {
      event.preventDefault();
      var id = form.querySelector('input').value.trim();
      if (/^[1-9][0-9]{0,17}$/.test(id)) {
        window.location.href = form.getAttribute('data-path').replace('{id}', id);
      }
    });
  });
})();
