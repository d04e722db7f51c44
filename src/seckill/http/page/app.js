// The sale page: item list, and a detail view that counts down by the server's clock, asks the exposer for the
// signed URL when the sale opens, and buys with one click. No framework, no build step.
(function () {
  'use strict';

  var path = location.pathname;
  var base = path.slice(0, path.lastIndexOf('/seckill/') + '/seckill'.length);
  var app = document.getElementById('app');
  var WORDS = {
    success: '秒杀成功 · You got it!',
    sold_out: '秒杀结束 · Sold out',
    ended: '秒杀结束 · The sale is over',
    repeat: '重复秒杀 · You already bought this one',
    inner_error: '系统异常 · Something went wrong, nothing was charged; try again',
    tampered: '数据篡改 · This link is not valid for you',
    unavailable: '暂不可用 · Unavailable'
  };

  var page = window.seckillPage;
  var element = page.element;
  var api = page.api(base);

  function cookie(name) {
    var match = document.cookie.split('; ').filter(function (pair) { return pair.indexOf(name + '=') === 0; })[0];
    return match ? match.slice(name.length + 1) : null;
  }

  // The phone is asked once and kept in the classic killPhone cookie for 7 days.
  function phone() {
    var known = cookie('killPhone');
    if (known && /^\d{11}$/.test(known)) {
      document.getElementById('who').textContent = known;
      return Promise.resolve(known);
    }
    var form = document.getElementById('phone-form');
    form.hidden = false;
    app.hidden = true;
    return new Promise(function (resolve) {
      form.addEventListener('submit', function (event) {
        event.preventDefault();
        var value = document.getElementById('phone-input').value.trim();
        if (!/^\d{11}$/.test(value)) {
          document.getElementById('phone-error').textContent = '请输入 11 位数字 · Please enter 11 digits';
          return;
        }
        document.cookie = 'killPhone=' + value + '; path=' + base + '; max-age=' + 7 * 24 * 3600 + '; SameSite=Lax';
        form.hidden = true;
        app.hidden = false;
        document.getElementById('who').textContent = value;
        resolve(value);
      });
    });
  }

  function clock(ms) {
    var seconds = Math.max(0, Math.ceil(ms / 1000));
    var parts = [Math.floor(seconds / 86400), Math.floor(seconds / 3600) % 24, Math.floor(seconds / 60) % 60, seconds % 60];
    return (parts[0] ? parts[0] + 'd ' : '') + parts.slice(1).map(function (n) { return String(n).padStart(2, '0'); }).join(':');
  }

  function showList() {
    api('GET', '/list.json').then(function (answer) {
      var items = answer.body.data || [];
      if (!items.length) { app.appendChild(element('p', {}, '暂无秒杀 · No sales yet')); return; }
      var table = element('table');
      var head = element('tr');
      ['商品 · Item', '库存 · Stock', '开始 · Opens', '结束 · Closes', ''].forEach(function (title) { head.appendChild(element('th', {}, title)); });
      table.appendChild(head);
      items.forEach(function (item) {
        var row = element('tr');
        row.appendChild(element('td', {}, item.name));
        row.appendChild(element('td', {}, String(item.number)));
        row.appendChild(element('td', {}, new Date(item.startTime).toLocaleString()));
        row.appendChild(element('td', {}, new Date(item.endTime).toLocaleString()));
        var cell = element('td');
        cell.appendChild(element('a', { href: item.seckillId + '/detail', 'data-id': String(item.seckillId) }, '详情 · Details'));
        row.appendChild(cell);
        table.appendChild(row);
      });
      app.appendChild(table);
    });
  }

  function showDetail(id) {
    var title = element('h1', { id: 'name' }, '加载中 · Loading…');
    var stock = element('p', { id: 'stock' });
    var status = element('div', { id: 'countdown', class: 'countdown' });
    var button = element('button', { id: 'buy', type: 'button', disabled: '' }, '秒杀 · Buy');
    var result = element('div', { id: 'result', class: 'result', role: 'status' });
    var mine = element('div', { id: 'mine', class: 'result success', hidden: '' });
    [title, stock, status, button, result, mine].forEach(function (node) { app.appendChild(node); });

    loadDetail().then(function (item) {
      if (!item) { return; }
      return api('GET', '/time/now').then(function (now) { countdown(now.body.data, item.startTime, item.endTime); });
    });

    // The item's name and stock; an unknown item says so, with the way back to the list.
    function loadDetail() {
      return api('GET', '/' + id + '/detail.json').then(function (answer) {
        var item = answer.body && answer.body.success ? answer.body.data : null;
        if (!item) {
          title.textContent = answer.status === 404 ? '找不到这个商品 · No such item' : WORDS.unavailable;
          stock.textContent = '';
          stock.appendChild(element('a', { href: 'list', id: 'back' }, '返回列表 · Back to the list'));
          return null;
        }
        title.textContent = item.name;
        stock.textContent = '库存 · Stock: ' + item.number;
        return item;
      }, function () { return null; });
    }

    // Counts down by the server's clock: the offset between it and this browser's clock is measured once per sync.
    function countdown(serverNow, start, end) {
      var offset = serverNow - Date.now();
      if (serverNow >= end) { status.textContent = WORDS.ended; ownRecord(); return; }
      var timer = setInterval(function () {
        var left = start - (Date.now() + offset);
        if (left > 0) { status.textContent = '距开始 · Opens in ' + clock(left); return; }
        clearInterval(timer);
        status.textContent = '即将开始 · Opening…';
        expose();
      }, 200);
    }

    function expose() {
      api('POST', '/' + id + '/exposer').then(function (answer) {
        var exposer = answer.body.data;
        if (!answer.body.success || !exposer) { status.textContent = WORDS.unavailable; return; }
        if (!exposer.exposed) {
          // Not yet by the server's clock (or already over): re-sync and count down again.
          countdown(exposer.now, exposer.start, exposer.end);
          return;
        }
        status.textContent = '秒杀开始 · The sale is open!';
        button.disabled = false;
        button.addEventListener('click', function () {
          button.disabled = true;
          api('POST', '/' + id + '/' + exposer.md5 + '/execution').then(show, function () {
            result.textContent = WORDS.inner_error;
          });
        }, { once: true });
      });
    }

    function show(answer) {
      var execution = answer.body.data;
      var reason = !execution ? null
        : execution.state === 1 ? 'success'
        : execution.state === -1 ? 'repeat'
        : execution.state === -3 ? 'tampered'
        : execution.state === -2 ? 'inner_error' : 'sold_out';
      result.textContent = reason ? WORDS[reason] : WORDS.unavailable;
      result.className = 'result ' + (reason === 'success' ? 'success' : 'refused');
      result.setAttribute('data-state', execution ? String(execution.state) : '');
      // "秒杀结束" speaks of the item, not of this buyer: whoever answered it (the balancer answers closed items
      // without asking who is buying) cannot have known that this buyer holds a unit, so the page asks. So does
      // an answer in doubt (503), which may have committed.
      if ((execution && execution.state === 0) || answer.status === 503) { ownRecord(); }
      // The stock after this buy; again once the detail cache (a second at most) has let it go.
      loadDetail();
      setTimeout(loadDetail, 1200);
    }

    // Shows this buyer's committed record of the item, if there is one; shows nothing otherwise (no record yet
    // is not a refusal).
    function ownRecord() {
      api('GET', '/' + id + '/result').then(function (answer) {
        var record = answer.body && answer.body.data;
        if (!record) { return; }
        var when = page.when(record.createTime);
        mine.textContent = '您已抢到，' + when + ' · You hold one, bought ' + when;
        mine.hidden = false;
      }, function () {});
    }
  }

  var detail = path.match(/\/seckill\/(\d+)\/detail$/);
  phone().then(function () {
    if (detail) { showDetail(detail[1]); } else { showList(); }
  });
})();
