/* frontgate widget: fetches an ALTCHA v2 proof-of-work challenge, solves it in Web Workers,
 * exchanges the solution for a clearance at /.frontgate/verify, and retries the request.
 * Served at /.frontgate/widget.js; the same file is the Web Worker (so a strict CSP with
 * worker-src 'self' suffices). API: window.frontgate.fetch(input, init), .clear(path), .solve(url).
 * No dependencies, no tracking. */
(function () {
  'use strict';
  var MAX_COUNTER = 10000000;

  function hexToBytes(hex) {
    var out = new Uint8Array(hex.length / 2);
    for (var i = 0; i < out.length; i++) out[i] = parseInt(hex.substr(i * 2, 2), 16);
    return out;
  }
  function bytesToHex(b) {
    var s = '';
    for (var i = 0; i < b.length; i++) s += (b[i] < 16 ? '0' : '') + b[i].toString(16);
    return s;
  }
  function password(nonce, counter) {
    var p = new Uint8Array(nonce.length + 4);
    p.set(nonce, 0);
    new DataView(p.buffer).setUint32(nonce.length, counter, false);
    return p;
  }
  async function pbkdf2(pw, salt, iterations, bytes) {
    var key = await crypto.subtle.importKey('raw', pw, 'PBKDF2', false, ['deriveBits']);
    var bits = await crypto.subtle.deriveBits({ name: 'PBKDF2', hash: 'SHA-256', salt: salt, iterations: iterations }, key, bytes * 8);
    return new Uint8Array(bits);
  }

  // scrypt (RFC 7914): PBKDF2 from WebCrypto around a plain-JS ROMix. Little-endian words.
  function salsa208(B, x) {
    for (var i = 0; i < 16; i++) x[i] = B[i];
    for (var r = 0; r < 8; r += 2) {
      var R = function (a, b) { return (a << b) | (a >>> (32 - b)); };
      x[4] ^= R(x[0] + x[12], 7); x[8] ^= R(x[4] + x[0], 9); x[12] ^= R(x[8] + x[4], 13); x[0] ^= R(x[12] + x[8], 18);
      x[9] ^= R(x[5] + x[1], 7); x[13] ^= R(x[9] + x[5], 9); x[1] ^= R(x[13] + x[9], 13); x[5] ^= R(x[1] + x[13], 18);
      x[14] ^= R(x[10] + x[6], 7); x[2] ^= R(x[14] + x[10], 9); x[6] ^= R(x[2] + x[14], 13); x[10] ^= R(x[6] + x[2], 18);
      x[3] ^= R(x[15] + x[11], 7); x[7] ^= R(x[3] + x[15], 9); x[11] ^= R(x[7] + x[3], 13); x[15] ^= R(x[11] + x[7], 18);
      x[1] ^= R(x[0] + x[3], 7); x[2] ^= R(x[1] + x[0], 9); x[3] ^= R(x[2] + x[1], 13); x[0] ^= R(x[3] + x[2], 18);
      x[6] ^= R(x[5] + x[4], 7); x[7] ^= R(x[6] + x[5], 9); x[4] ^= R(x[7] + x[6], 13); x[5] ^= R(x[4] + x[7], 18);
      x[11] ^= R(x[10] + x[9], 7); x[8] ^= R(x[11] + x[10], 9); x[9] ^= R(x[8] + x[11], 13); x[10] ^= R(x[9] + x[8], 18);
      x[12] ^= R(x[15] + x[14], 7); x[13] ^= R(x[12] + x[15], 9); x[14] ^= R(x[13] + x[12], 13); x[15] ^= R(x[14] + x[13], 18);
    }
    for (var j = 0; j < 16; j++) B[j] = (B[j] + x[j]) | 0;
  }
  function blockMix(B, Y, r, X, tmp) {
    X.set(B.subarray((2 * r - 1) * 16, 2 * r * 16));
    for (var i = 0; i < 2 * r; i++) {
      for (var k = 0; k < 16; k++) X[k] ^= B[i * 16 + k];
      salsa208(X, tmp);
      var at = ((i & 1) ? r + (i >> 1) : (i >> 1)) * 16;
      Y.set(X, at);
    }
  }
  function romix(block, N, r) {
    var words = 32 * r;
    var Xb = new Uint32Array(words), Yb = new Uint32Array(words), V = new Uint32Array(words * N);
    var X16 = new Uint32Array(16), tmp = new Uint32Array(16);
    var dv = new DataView(block.buffer, block.byteOffset, block.byteLength);
    for (var w = 0; w < words; w++) Xb[w] = dv.getUint32(w * 4, true);
    for (var i = 0; i < N; i++) {
      V.set(Xb, i * words);
      blockMix(Xb, Yb, r, X16, tmp);
      var t = Xb; Xb = Yb; Yb = t;
    }
    for (var n = 0; n < N; n++) {
      var j = Xb[(2 * r - 1) * 16] & (N - 1);
      for (var k = 0; k < words; k++) Xb[k] ^= V[j * words + k];
      blockMix(Xb, Yb, r, X16, tmp);
      var t2 = Xb; Xb = Yb; Yb = t2;
    }
    for (var m = 0; m < words; m++) dv.setUint32(m * 4, Xb[m], true);
  }
  async function scrypt(pw, salt, N, r, p, bytes) {
    var B = await pbkdf2(pw, salt, 1, p * 128 * r);
    for (var i = 0; i < p; i++) romix(B.subarray(i * 128 * r, (i + 1) * 128 * r), N, r);
    return pbkdf2(pw, B, 1, bytes);
  }

  async function deriveKey(params, salt, pw) {
    var len = params.keyLength || 32;
    if (params.algorithm === 'PBKDF2/SHA-256') return pbkdf2(pw, salt, params.cost, len);
    if (params.algorithm === 'SCRYPT') return scrypt(pw, salt, params.cost, params.memoryCost || 8, params.parallelism || 1, len);
    throw new Error('unsupported algorithm ' + params.algorithm);
  }

  // Tries counters start, start+step, ... until the derived key starts with keyPrefix.
  async function search(params, start, step, shouldStop) {
    var nonce = hexToBytes(params.nonce), salt = hexToBytes(params.salt), prefix = params.keyPrefix.toLowerCase();
    for (var c = start; c <= MAX_COUNTER; c += step) {
      if (shouldStop && shouldStop()) return null;
      var key = await deriveKey(params, salt, password(nonce, c));
      var hex = bytesToHex(key);
      if (hex.indexOf(prefix) === 0) return { counter: c, derivedKey: hex };
    }
    return null;
  }

  var isWorker = typeof window === 'undefined' && typeof importScripts === 'function';
  if (isWorker) {
    var stopped = false;
    self.onmessage = function (e) {
      if (e.data && e.data.type === 'stop') { stopped = true; return; }
      search(e.data.params, e.data.start, e.data.step, function () { return stopped; })
        .then(function (s) { self.postMessage({ solution: s }); }, function (err) { self.postMessage({ error: String(err) }); });
    };
    return;
  }

  var script = document.currentScript;
  var workerUrl = script && script.src ? script.src : '/.frontgate/widget.js';

  // Solves with one worker per core, interleaving counters; falls back to this thread.
  function solveChallenge(challenge) {
    var started = Date.now();
    var n = Math.max(1, Math.min(8, navigator.hardwareConcurrency || 2));
    if (challenge.parameters.algorithm === 'SCRYPT') n = Math.min(n, 4); // memory per worker
    if (typeof Worker === 'undefined') {
      return search(challenge.parameters, 0, 1).then(function (s) { return finish(challenge, s, started); });
    }
    return new Promise(function (resolve, reject) {
      var workers = [], pending = n, done = false;
      function stopAll() { workers.forEach(function (w) { try { w.postMessage({ type: 'stop' }); w.terminate(); } catch (e) { /* gone */ } }); }
      for (var i = 0; i < n; i++) {
        var w = new Worker(workerUrl);
        workers.push(w);
        w.onmessage = function (e) {
          if (done) return;
          if (e.data.solution) { done = true; stopAll(); resolve(finish(challenge, e.data.solution, started)); return; }
          if (--pending === 0) { done = true; stopAll(); reject(new Error(e.data.error || 'no solution found')); }
        };
        w.onerror = function (err) { if (!done) { done = true; stopAll(); reject(err); } };
        w.postMessage({ params: challenge.parameters, start: i, step: n });
      }
    });
  }
  function finish(challenge, solution, started) {
    if (!solution) throw new Error('no solution found');
    solution.time = Date.now() - started;
    return btoa(JSON.stringify({ challenge: { parameters: challenge.parameters, signature: challenge.signature }, solution: solution }));
  }

  // A 503 (`overloaded`: no derivation slot came free in time) is asked again after its
  // Retry-After, a few times; the gateway does not count those against challenge_rate.
  var OVERLOADED_RETRIES = 5;
  async function solve(challengeUrl) {
    var r;
    for (var attempt = 0; ; attempt++) {
      r = await fetch(challengeUrl, { credentials: 'same-origin', cache: 'no-store' });
      if (r.status !== 503 || attempt >= OVERLOADED_RETRIES) break;
      var wait = parseInt(r.headers.get('retry-after'), 10);
      wait = Math.min(Math.max(isNaN(wait) ? 1 : wait, 1), 10);
      await new Promise(function (resolve) { setTimeout(resolve, wait * 1000); });
    }
    if (!r.ok) throw new Error('challenge refused: HTTP ' + r.status);
    return solveChallenge(await r.json());
  }

  // One solve per challenge URL at a time, and the clearance remembered for this page.
  var inflight = {}, clearances = {};
  function challengeUrlFor(path) {
    return path.indexOf('/.frontgate/challenge') === 0 ? path : '/.frontgate/challenge?route=' + encodeURIComponent(path);
  }
  function clear(path) {
    var url = challengeUrlFor(path);
    if (!inflight[url]) {
      inflight[url] = solve(url).then(function (payload) {
        return fetch('/.frontgate/verify', {
          method: 'POST', credentials: 'same-origin',
          headers: { 'content-type': 'application/json' }, body: JSON.stringify({ altcha: payload })
        });
      }).then(async function (r) {
        var body = await r.json();
        if (!r.ok || !body.clearance) throw new Error('verification refused: ' + (body.detail || r.status));
        clearances[url] = body.clearance;
        return body.clearance;
      }).finally(function () { delete inflight[url]; });
    }
    return inflight[url];
  }

  // fetch() that solves a challenge when the gateway asks for one, then retries once.
  async function guardedFetch(input, init) {
    var req = new Request(input, init);
    var retry = req.clone();
    var res = await fetch(req);
    if (res.status !== 403 && res.status !== 429) return res;
    var problem = null;
    try { problem = await res.clone().json(); } catch (e) { return res; }
    if (!problem || !problem.challenge || (problem.code !== 'challenge_required' && problem.code !== 'challenge_failed')) return res;
    var clearance = await clear(problem.challenge);
    retry.headers.set('X-Frontgate-Clearance', clearance);
    return fetch(retry);
  }

  window.frontgate = { fetch: guardedFetch, clear: clear, solve: solve, solveChallenge: solveChallenge, deriveKey: deriveKey };

  // The interstitial page: solve, then reload (GET) or say to resubmit.
  var auto = script && script.dataset ? script.dataset.frontgateChallenge : null;
  if (auto) {
    var status = document.getElementById('fg-status');
    var button = document.getElementById('fg-retry');
    var say = function (t) { if (status) status.textContent = t; };
    var run = function () {
      if (button) button.hidden = true;
      say('Calculating… this takes a few seconds.');
      clear(auto).then(function () {
        if (script.dataset.frontgateReload === 'true') { say('Done. Reloading the page…'); location.reload(); }
        else say('Done. Go back and send the form again: it will go through now.');
      }, function (err) {
        say('The check did not complete (' + err.message + '). Press "Try again".');
        if (button) { button.hidden = false; button.focus(); }
      });
    };
    if (button) button.addEventListener('click', run);
    run();
  }
})();
