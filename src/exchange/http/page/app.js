// The exchange page: the balance, the catalogue with one Exchange button per gift, and my exchanges with their
// shipment states, refreshed every few seconds. Each click makes a fresh Idempotency-Key and, on a network error
// or a 503, sends the same request again with that same key: the server answers a known key with its first
// outcome, so a retry never pays twice. No framework, no build step.
(function () {
  'use strict';

  var path = location.pathname;
  var base = path.slice(0, path.lastIndexOf('/exchange') + '/exchange'.length);
  var REFRESH_MS = 3000;
  // Waits before each retry of one exchange; after the last, the page stops asking and says to check the list.
  var RETRY_WAITS_MS = [500, 1000, 2000, 4000, 8000];
  var OUTCOMES = {
    exchanged: '兑换成功 · Exchanged!',
    not_enough_points: '积分不足 · Not enough points',
    out_of_stock: '已兑完 · Out of stock',
    unknown_user: '您还没有积分 · You have no points yet',
    unknown_gift: '礼品不存在 · No such gift'
  };
  var SHIPMENT = {
    pending: '待发送 · Waiting to be sent',
    sent: '已发往仓库 · Sent to the warehouse',
    consumed: '已请求发货 · Shipment requested',
    dead: '发送失败，客服跟进 · Delivery failed, support will follow up'
  };
  var REASONS = { grant: '发放 · Granted', exchange: '兑换 · Exchange' };

  var giftNames = {};
  var giftRows = {};
  var inFlight = {};
  var signedIn = true;

  var page = window.seckillPage;
  var $ = page.$, element = page.element, when = page.when, show = page.show;
  var api = page.api(base);

  // 16 random bytes in hex: getRandomValues works on plain HTTP too, unlike crypto.randomUUID.
  function newKey() {
    var bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return 'web-' + Array.prototype.map.call(bytes, function (b) { return ('0' + b.toString(16)).slice(-2); }).join('');
  }

  function showBalance(balance) {
    // null: never granted, shown as 0 (an exchange would answer unknown_user).
    $('balance').textContent = balance === null || balance === undefined ? '0' : String(balance);
  }

  function showSignedOut(message) {
    signedIn = false;
    page.signedOut($('signed-out'), message);
    $('balance').textContent = '—';
    $('who').textContent = '';
    Object.keys(giftRows).forEach(function (id) { giftRows[id].button.disabled = true; });
  }

  function exchange(gift, button) {
    if (inFlight[gift.giftId]) { return; }
    inFlight[gift.giftId] = true;
    button.disabled = true;
    var key = newKey();
    show('working', '兑换中… · Exchanging ' + gift.name + '…');
    attempt(0);

    function attempt(retries) {
      api('POST', '/gifts/' + gift.giftId + '/exchange', { 'Idempotency-Key': key }).then(function (answer) {
        var body = answer.body || {};
        if (answer.status === 200 && body.success && body.data) { done(body.data); return; }
        // 503: unreachable, rolled back or in doubt; the same key is safe and settles it. Other 5xx (a proxy's
        // 502) likewise.
        if (answer.status >= 500) { retry(retries); return; }
        finish('failed', body.error || 'HTTP ' + answer.status, '');
        if (answer.status === 401) { showSignedOut(body.error); }
      }, function () { retry(retries); });
    }

    function retry(retries) {
      if (retries >= RETRY_WAITS_MS.length) {
        finish('failed', '暂时无法确认结果，请稍后查看“我的兑换” · Could not confirm the outcome; check My exchanges shortly', '');
        return;
      }
      show('working', '网络不稳，重试中… · Retrying ' + gift.name + '…');
      setTimeout(function () { attempt(retries + 1); }, RETRY_WAITS_MS[retries]);
    }

    function done(data) {
      var text = OUTCOMES[data.outcome] || data.outcome;
      if (data.outcome === 'exchanged') {
        text += ' ' + gift.name + ' · 余额 Balance: ' + data.balanceAfter;
        showBalance(data.balanceAfter);
      }
      finish(data.outcome === 'exchanged' ? 'success' : 'refused', text, data.outcome);
    }

    function finish(kind, text, outcome) {
      show(kind, text, outcome);
      inFlight[gift.giftId] = false;
      button.disabled = gift.stock === 0;
      refresh();
    }
  }

  function showGifts(gifts) {
    $('no-gifts').hidden = gifts.length > 0;
    var body = $('gifts').tBodies[0];
    gifts.forEach(function (gift) {
      giftNames[gift.giftId] = gift.name;
      var row = giftRows[gift.giftId];
      if (!row) {
        row = { tr: element('tr', { 'data-gift-id': String(gift.giftId) }), gift: gift };
        row.name = element('td', {}, gift.name);
        row.cost = element('td', { class: 'number' });
        row.stock = element('td', { class: 'number' });
        row.button = element('button', { id: 'exchange-' + gift.giftId, class: 'exchange', type: 'button' }, '兑换 · Exchange');
        row.button.addEventListener('click', function () { exchange(row.gift, row.button); });
        var cell = element('td');
        cell.appendChild(row.button);
        [row.name, row.cost, row.stock, cell].forEach(function (td) { row.tr.appendChild(td); });
        body.appendChild(row.tr);
        giftRows[gift.giftId] = row;
      }
      row.gift = gift;
      row.cost.textContent = String(gift.cost);
      row.stock.textContent = String(gift.stock);
      row.button.disabled = !signedIn || gift.stock === 0 || !!inFlight[gift.giftId];
    });
  }

  function showMine(mine) {
    signedIn = true;
    $('signed-out').hidden = true;
    $('who').textContent = '用户 User ' + mine.userId;
    showBalance(mine.balance);

    var exchanges = $('exchanges').tBodies[0];
    exchanges.textContent = '';
    $('no-exchanges').hidden = mine.exchanges.length > 0;
    mine.exchanges.forEach(function (record) {
      var tr = element('tr', { 'data-exchange-id': String(record.exchangeId) });
      tr.appendChild(element('td', { class: 'number' }, String(record.exchangeId)));
      tr.appendChild(element('td', {}, giftNames[record.giftId] || '#' + record.giftId));
      tr.appendChild(element('td', { class: 'number' }, String(record.points)));
      tr.appendChild(element('td', {}, when(record.createdAt)));
      var state = record.shipment || 'unknown';
      var cell = element('td');
      cell.appendChild(element('span', { class: 'state ' + state, 'data-state': state }, SHIPMENT[state] || '未知 · Unknown'));
      tr.appendChild(cell);
      exchanges.appendChild(tr);
    });

    var ledger = $('ledger').tBodies[0];
    ledger.textContent = '';
    mine.ledger.forEach(function (entry) {
      var tr = element('tr');
      tr.appendChild(element('td', {}, when(entry.createdAt)));
      tr.appendChild(element('td', { class: 'number ' + (entry.delta < 0 ? 'minus' : 'plus') },
        (entry.delta > 0 ? '+' : '') + entry.delta));
      tr.appendChild(element('td', { class: 'number' }, String(entry.balanceAfter)));
      var reason = REASONS[entry.reason] || entry.reason;
      tr.appendChild(element('td', {}, entry.reason === 'exchange' ? reason + ' #' + entry.reference
        : reason + (entry.reference ? ' (' + entry.reference + ')' : '')));
      ledger.appendChild(tr);
    });
  }

  var timer = null;
  // Gifts first, so my exchanges can name them; a failed read keeps what is shown and tries again next time.
  function refresh() {
    clearTimeout(timer);
    return api('GET', '/gifts.json').then(function (answer) {
      if (answer.body && answer.body.success) { showGifts(answer.body.data); }
      return api('GET', '/mine.json');
    }).then(function (answer) {
      var body = answer.body || {};
      if (answer.status === 401) { showSignedOut(body.error); return; }
      if (body.success) { showMine(body.data); }
    }).catch(function () { /* offline for now: the next refresh tries again */ })
      .then(function () { timer = setTimeout(refresh, REFRESH_MS); });
  }

  refresh();
})();
