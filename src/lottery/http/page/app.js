// The lottery page: the campaign (its window and the prizes left in each tier), a Draw button, the outcome of a
// draw, and my draws. The campaign is the last segment of the page's path. A draw is never sent again by itself:
// with more than one draw per user a second POST is a second draw, so after an answer that decided nothing (a
// network error, a 503) the page reads my draws, which list the draw if it went through, and lets the user
// decide. Below, the campaign's commitment, and once it is over its seed: the page then checks the commitment
// and recomputes each of my draws' numbers in the browser (docs/lottery-verification.md). No framework, no build
// step.
(function () {
  'use strict';

  var path = location.pathname.replace(/\/+$/, '');
  var base = path;
  // How often the status is read again: the window opening, prizes running out.
  var REFRESH_MS = 5000;
  // How long after a draw in doubt the page looks at my draws: the commit, if there was one, has landed by then.
  var SETTLE_MS = 1000;
  var OUTCOMES = {
    won: '恭喜中奖！ · You won: ',
    no_prize: '未中奖，谢谢参与 · No prize this time',
    all_drawn: '奖品已抽完 · Every prize has been drawn',
    not_started: '活动尚未开始 · Not started yet',
    ended: '活动已结束 · The campaign has ended',
    unknown_campaign: '活动不存在 · No such campaign'
  };
  var PHASES = { not_started: '未开始 · Not started', open: '进行中 · Open', ended: '已结束 · Ended' };

  var status = null;
  var draws = null;
  var signedIn = true;
  var drawing = false;

  var page = window.seckillPage;
  var $ = page.$, element = page.element, when = page.when, show = page.show;
  var api = page.api(base);

  // The button is live only when a draw could win something: signed in, open, prizes left, draws left.
  function updateButton() {
    var button = $('draw');
    var used = draws ? draws.length : 0;
    var usedUp = status && used >= status.drawsPerUser;
    button.disabled = drawing || !signedIn || !status || status.phase !== 'open' || status.allDrawn || !draws || usedUp;
    if (status && status.allDrawn) {
      button.textContent = '已抽完 · All drawn';
    } else if (usedUp) {
      button.textContent = '已抽过 · Drawn';
    } else {
      button.textContent = '抽奖 · Draw';
    }
  }

  function showStatus(data) {
    status = data;
    $('missing').hidden = true;
    $('name').textContent = data.name;
    $('window').textContent = when(data.startTime) + ' — ' + when(data.endTime);
    var phase = $('phase');
    phase.textContent = data.allDrawn && data.phase === 'open' ? '奖品已抽完 · All drawn' : PHASES[data.phase] || data.phase;
    phase.className = 'phase ' + (data.allDrawn ? 'all_drawn' : data.phase);
    phase.setAttribute('data-phase', data.phase);
    $('prizes-left').textContent = String(data.prizesLeft);
    var body = $('tiers').tBodies[0];
    body.textContent = '';
    data.tiers.forEach(function (tier) {
      var tr = element('tr', { 'data-tier-id': String(tier.tierId) });
      tr.appendChild(element('td', {}, tier.name));
      tr.appendChild(element('td', { class: 'number' }, (tier.valueFen / 100).toFixed(2)));
      tr.appendChild(element('td', { class: 'number' }, (tier.odds * 100).toFixed(2) + '%'));
      tr.appendChild(element('td', { class: 'number' + (tier.stock === 0 ? ' empty' : '') }, String(tier.stock)));
      tr.appendChild(element('td', { class: 'number' }, String(tier.stocked)));
      body.appendChild(tr);
    });
    showFairness(data);
    updateButton();
  }

  // SHA-256 of a text as lowercase hex, by the browser (only on https or loopback pages: a secure context).
  function sha256(text) {
    var bytes = new TextEncoder().encode(text);
    return crypto.subtle.digest('SHA-256', bytes).then(function (digest) {
      return Array.prototype.map.call(new Uint8Array(digest), function (b) {
        return (b < 16 ? '0' : '') + b.toString(16);
      }).join('');
    });
  }
  var canHash = !!(window.crypto && crypto.subtle && window.TextEncoder);

  var shownSeed = null;
  function showFairness(data) {
    $('commitment').textContent = data.commitment || '无（早于承诺机制） · none (created before commitments)';
    $('seed').textContent = data.seed || '活动结束后公布 · revealed when the campaign is over';
    $('audit').hidden = !data.seed;
    $('audit-link').setAttribute('href', base + '/audit.json');
    if (!data.seed || data.seed === shownSeed) { return; }
    shownSeed = data.seed;
    var check = $('commitment-check');
    if (!canHash) { check.textContent = '（此浏览器无法在此核验 · this browser cannot check here）'; return; }
    sha256(data.seed + ':' + data.rules).then(function (hash) {
      var ok = hash === data.commitment;
      check.textContent = ok ? '✓ 与承诺一致 · matches the commitment' : '✗ 与承诺不符 · does NOT match the commitment';
      check.className = ok ? 'won' : 'error';
      check.setAttribute('data-check', ok ? 'ok' : 'mismatch');
    });
    if (draws) { showMine({ userId: userId, draws: draws }); }
  }

  // Where one of my draws lands, recomputed from the revealed seed: its number, its slot, the tier (or blank).
  function checkDraw(record, cell) {
    if (!status || !status.seed || !canHash) { return; }
    sha256(status.seed + ':' + status.campaignId + ':' + userId + ':' + record.drawNo).then(function (hash) {
      var r = BigInt('0x' + hash.slice(0, 8));
      var total = BigInt(status.blankWeight);
      status.tiers.forEach(function (tier) { total += BigInt(tier.weight); });
      var slot = r * total / 4294967296n;
      var upper = 0n;
      var landed = null;
      status.tiers.forEach(function (tier) {
        upper += BigInt(tier.weight);
        if (landed === null && slot < upper) { landed = tier; }
      });
      var text = 'r = ' + r + ', slot ' + slot + '/' + total + ' → ' + (landed ? landed.name : '空 · blank');
      var ok = landed ? record.tierId === landed.tierId : record.tierId === null;
      if (ok) {
        text += ' ✓';
      } else if (landed) {
        text += '（已抽完，顺延 · ran out in your batch: the audit log shows where it fell through）';
      } else {
        text += ' ✗';
      }
      cell.textContent = text;
      cell.setAttribute('data-check', ok ? 'ok' : landed ? 'fell-through' : 'mismatch');
    });
  }

  function describe(record) {
    return record.prize ? '中奖 · Won: ' + record.prize : '未中奖 · No prize';
  }

  var userId = null;
  function showMine(mine) {
    signedIn = true;
    draws = mine.draws;
    userId = mine.userId;
    $('signed-out').hidden = true;
    $('who').textContent = '用户 User ' + mine.userId;
    var body = $('mine').tBodies[0];
    body.textContent = '';
    $('no-draws').hidden = mine.draws.length > 0;
    mine.draws.forEach(function (record) {
      var tr = element('tr', { 'data-draw-id': String(record.drawId) });
      tr.appendChild(element('td', { class: 'number' }, String(record.drawNo)));
      tr.appendChild(element('td', { class: record.prize ? 'won' : 'lost' }, describe(record)));
      tr.appendChild(element('td', {}, when(record.createdAt)));
      var check = element('td', { class: 'check' }, '');
      tr.appendChild(check);
      checkDraw(record, check);
      body.appendChild(tr);
    });
    updateButton();
  }

  function showSignedOut(message) {
    signedIn = false;
    page.signedOut($('signed-out'), message);
    $('who').textContent = '';
    updateButton();
  }

  function loadStatus() {
    return api('GET', '/status.json').then(function (answer) {
      var body = answer.body || {};
      if (answer.status === 200 && body.success) { showStatus(body.data); return; }
      if (answer.status === 404) {
        var missing = $('missing');
        missing.hidden = false;
        missing.textContent = '活动不存在 · No such campaign';
        $('name').textContent = '';
      }
    });
  }

  function loadMine() {
    return api('GET', '/mine.json').then(function (answer) {
      var body = answer.body || {};
      if (answer.status === 401) { showSignedOut(body.error); return null; }
      if (body.success) { showMine(body.data); return body.data; }
      return null;
    });
  }

  function draw() {
    if (drawing) { return; }
    drawing = true;
    updateButton();
    var before = draws ? draws.length : 0;
    show('working', '抽奖中… · Drawing…');
    api('POST', '/draw').then(function (answer) {
      var body = answer.body || {};
      if (answer.status === 200 && body.success && body.data) { done(body.data); return; }
      if (answer.status === 401) { showSignedOut(body.error); }
      if (answer.status >= 500) { settle(); return; }
      finish('failed', body.error || 'HTTP ' + answer.status, '');
    }, settle);

    function done(data) {
      var text = OUTCOMES[data.outcome] || data.outcome;
      if (data.outcome === 'won') { text += data.prize; }
      if (data.repeat) { text = '您已抽过 · Already drawn — ' + text; }
      finish(data.outcome === 'won' ? 'success' : 'refused', text, data.outcome);
    }

    // The draw may or may not have gone through: my draws tell.
    function settle() {
      show('working', '结果确认中… · Checking the outcome…');
      setTimeout(function () {
        loadMine().then(function (mine) {
          var latest = mine && mine.draws.length > before ? mine.draws[mine.draws.length - 1] : null;
          if (latest) {
            finish(latest.prize ? 'success' : 'refused', describe(latest), latest.prize ? 'won' : 'no_prize');
          } else {
            finish('failed', '暂时无法抽奖，请稍后再试 · Could not draw just now; try again shortly', '');
          }
        }, function () {
          finish('failed', '暂时无法确认结果，请稍后查看“我的抽奖” · Could not confirm the outcome; check My draws shortly', '');
        });
      }, SETTLE_MS);
    }

    function finish(kind, text, outcome) {
      show(kind, text, outcome);
      drawing = false;
      refresh(true);
    }
  }

  var timer = null;
  // The status every few seconds (the server answers it from memory for a crowd); my draws only when the page
  // opens, after each draw, and until they have been read once: they change only when I draw. A failed read keeps
  // what is shown and tries again next time.
  function refresh(withMine) {
    clearTimeout(timer);
    var reads = [loadStatus()];
    if (withMine || (draws === null && signedIn)) { reads.push(loadMine()); }
    return Promise.all(reads)
      .catch(function () { /* offline for now: the next refresh tries again */ })
      .then(function () { updateButton(); timer = setTimeout(refresh, nextRefreshMs()); });
  }

  // Right when the window opens (by the server's clock), else every few seconds.
  function nextRefreshMs() {
    if (!status || status.phase !== 'not_started') { return REFRESH_MS; }
    return Math.max(200, Math.min(REFRESH_MS, status.startTime - status.now + 100));
  }

  $('draw').addEventListener('click', draw);
  refresh(true);
})();
