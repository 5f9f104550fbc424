'use strict'

// SPDY client built directly on spdy-transport (the `spdy` HTTP wrapper does
// not work on current Node releases). It reads one JSON job from stdin, runs
// every request of the job concurrently over a single SPDY session (one TCP
// or TLS connection) and prints one JSON report on stdout.
//
// Job:
//   { "host": "127.0.0.1", "port": N, "tls": bool,
//     "protocol": "spdy/3.1" | "spdy/3" | "spdy/2",
//     "servername": "localhost",
//     "requests": [ { "method": "GET", "path": "/x", "headers": {...},
//                     "priority": 0..7, "bodyBytes": N,
//                     "resetAfterBytes": N, "captureBody": bool,
//                     "refusePushes": bool } ... ],
//     "concurrency": N, "ping": bool, "timeoutMs": N, "windowSize": N }
//
// Report:
//   { "results": [ { "path", "status", "headers", "bodyBytes", "sha256",
//                    "error", "reset", "body"?, "trailers",
//                    "pushes": [ { "id", "path", "host", "method",
//                                  "status", "headers", "bodyBytes",
//                                  "sha256", "body", "error",
//                                  "beforeEnd" } ... ] } ... ],
//                                                   // in request order
//     "pingMs": number | null, "protocol": "spdy/3.1" | ... | null,
//     "sessionErrors": [ ... ], "settings": { ... } }
//
// The exit status is 0 whenever a report was printed, including when
// requests or the connection failed (those are reported). It is non-zero
// only when the job itself is unusable (bad JSON, bad arguments).
//
// Behaviour of spdy-transport 3.0.0 that matters to a server under test
// (all read from its source):
//
// * Versions. The client never negotiates in-band: the version is fixed by
//   connection.start(2 | 3 | 3.1). Over TLS it is taken from ALPN; in plain
//   mode it is the job's protocol.
// * Flow control. Each stream's receive window is `windowSize` (advertised
//   in SETTINGS INITIAL_WINDOW_SIZE); a stream WINDOW_UPDATE restoring the
//   full window is sent once the application has read half of it. For
//   spdy/3.1 the session receive window starts at the spec's 64 KiB and is
//   raised to `windowSize` with a WINDOW_UPDATE for stream 0 right after
//   the SETTINGS frame; afterwards a stream-0 WINDOW_UPDATE is sent each
//   time half of the session window has been received (counted when the
//   DATA is parsed, not when it is consumed). Sending honours both the
//   peer's stream windows (64 KiB until its SETTINGS) and, for 3.1 only,
//   the 64 KiB session window that only stream-0 WINDOW_UPDATEs grow.
//   spdy-transport applies the same per-stream windows and sends stream
//   WINDOW_UPDATEs for spdy/2 too, although SPDY/2 has no flow control.
// * DATA frames are at most 8 KiB (maxChunk).
// * Priority. SPDY priorities are mapped through spdy-transport's weight
//   model: weight = priority*5+1 is exactly converted back to `priority`
//   in SYN_STREAM. Without a priority a request goes out at priority 3.
//   For spdy/2 the 3-bit value is still written as `priority << 5`.
// * SETTINGS ids are written with FLAG_SETTINGS_PERSIST_VALUE set.
// * :scheme is hard-coded to "https" by the framer; it is overridden here
//   to "http" in plain mode.
// * A GET is always sent with FIN on SYN_STREAM (the transport ends the
//   writable side of GET streams); other methods without a body send
//   SYN_STREAM with FIN as well.
// * Server push. A client takes pushes (acceptPush). The parser requires
//   a push's SYN_STREAM to carry :method, :path and :status (it splits it
//   into a PUSH_PROMISE event on the associated stream, then the pushed
//   stream's 'response'); a push without a 'pushPromise' listener is
//   aborted. On spdy/2 the same holds under SPDY/2's names: the parser
//   renames method, url, host, scheme and status with a colon (url as
//   :path, host as :authority), so a push needs method, url and status;
//   it does not look into url, so a push whose url is the full URL (as
//   SPDY/2's draft has it) is reported with that URL as its "path".
//   A request's pushes are reported with it, each with its
//   response, body and whether its promise came before the end of the
//   associated response ("beforeEnd"); with "refusePushes" each push is
//   aborted (RST_STREAM) as it is promised.
// * Trailers. A HEADERS frame after the response is a 'headers' event:
//   reported as "trailers".

const crypto = require('crypto')
const net = require('net')
const tls = require('tls')
const transport = require('spdy-transport')

const VERSIONS = { 'spdy/3.1': 3.1, 'spdy/3': 3, 'spdy/2': 2 }
const WRITE_CHUNK = 16 * 1024
const DEFAULT_WINDOW = 1 << 20

function usage (msg) {
  process.stderr.write('client.js: ' + msg + '\n')
  process.exit(2)
}

function readStdin () {
  return new Promise((resolve, reject) => {
    const chunks = []
    process.stdin.on('data', (c) => chunks.push(c))
    process.stdin.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')))
    process.stdin.on('error', reject)
  })
}

// Pattern bytes: byte i of a body is i mod 251.
const PATTERN = Buffer.alloc(WRITE_CHUNK + 251)
for (let i = 0; i < PATTERN.length; i++) PATTERN[i] = i % 251

function patternChunk (offset, size) {
  const start = offset % 251
  return PATTERN.subarray(start, start + size)
}

function validate (job) {
  if (job === null || typeof job !== 'object') usage('job must be a JSON object')
  if (!Number.isInteger(job.port) || job.port <= 0 || job.port > 65535) usage('bad port')
  if (!(job.protocol in VERSIONS)) usage('bad protocol ' + JSON.stringify(job.protocol))
  if (!Array.isArray(job.requests)) usage('requests must be an array')
  for (const r of job.requests) {
    if (!r || typeof r.path !== 'string' || !r.path.startsWith('/')) usage('bad request path')
    if (r.priority !== undefined && r.priority !== null &&
        !(Number.isInteger(r.priority) && r.priority >= 0 && r.priority <= 7)) {
      usage('priority must be 0..7')
    }
  }
}

function connect (job) {
  return new Promise((resolve, reject) => {
    const host = job.host || '127.0.0.1'
    let socket
    const onError = (err) => reject(err)
    if (job.tls) {
      socket = tls.connect({
        host,
        port: job.port,
        servername: job.servername || 'localhost',
        ALPNProtocols: [job.protocol],
        rejectUnauthorized: false
      })
      socket.once('secureConnect', () => {
        socket.removeListener('error', onError)
        resolve({ socket, alpn: socket.alpnProtocol || null })
      })
    } else {
      socket = net.connect({ host, port: job.port })
      socket.once('connect', () => {
        socket.removeListener('error', onError)
        resolve({ socket, alpn: null })
      })
    }
    socket.once('error', onError)
  })
}

function newResult (req) {
  return {
    path: req.path,
    status: 0,
    headers: {},
    bodyBytes: 0,
    sha256: crypto.createHash('sha256').update('').digest('hex'),
    error: null,
    reset: false,
    trailers: null,
    pushes: []
  }
}

async function main () {
  let job
  try {
    job = JSON.parse(await readStdin())
  } catch (e) {
    usage('cannot parse job: ' + e.message)
  }
  validate(job)

  const timeoutMs = job.timeoutMs > 0 ? job.timeoutMs : 30000
  const windowSize = job.windowSize > 0 ? job.windowSize : DEFAULT_WINDOW
  const requests = job.requests
  const results = requests.map(newResult)
  const done = requests.map(() => false)
  const sessionErrors = []
  const settings = {}
  const report = { results, pingMs: null, protocol: null, sessionErrors, settings }

  let printed = false
  function finish (code) {
    if (printed) return
    printed = true
    process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(code))
  }

  const deadline = setTimeout(() => {
    sessionErrors.push('job timed out after ' + timeoutMs + ' ms')
    for (let i = 0; i < results.length; i++) {
      if (!done[i] && results[i].error === null) results[i].error = 'timeout'
    }
    finish(0)
  }, timeoutMs)
  deadline.unref()

  // completers[i] settles request i; set while the request is in flight.
  const completers = requests.map(() => null)
  function failAll (msg) {
    sessionErrors.push(msg)
    for (let i = 0; i < results.length; i++) {
      if (done[i]) continue
      const err = 'not completed: ' + msg
      if (completers[i]) {
        completers[i](err)
      } else {
        done[i] = true
        if (results[i].error === null) results[i].error = err
      }
    }
  }

  let socket, alpn
  try {
    ({ socket, alpn } = await connect(job))
  } catch (e) {
    failAll('connect: ' + e.message)
    return finish(0)
  }

  if (job.tls) {
    if (alpn !== job.protocol) {
      failAll('ALPN: offered ' + job.protocol + ', server selected ' + (alpn || 'nothing'))
      socket.destroy()
      return finish(0)
    }
    report.protocol = alpn
  } else {
    report.protocol = job.protocol
  }

  const connection = transport.connection.create(socket, {
    protocol: 'spdy',
    isServer: false,
    windowSize
  })

  // The framer hard-codes :scheme "https"; plain connections are "http".
  const scheme = job.tls ? 'https' : 'http'
  const framer = connection._spdyState.framer
  const requestFrame = framer.requestFrame
  framer.requestFrame = function (frame, callback) {
    return requestFrame.call(this, Object.assign({}, frame, { scheme }), callback)
  }

  let ending = false
  connection.on('error', (err) => sessionErrors.push('session: ' + err.message))
  connection.on('frame', (frame) => {
    if (frame.type === 'GOAWAY') {
      if (!ending || frame.code !== 'OK') {
        sessionErrors.push('GOAWAY received: lastId=' + frame.lastId + ' code=' + frame.code)
      }
    } else if (frame.type === 'SETTINGS') {
      Object.assign(settings, frame.settings)
    }
  })
  let closed = false
  const closedP = new Promise((resolve) => socket.once('close', () => { closed = true; resolve() }))
  socket.on('close', () => {
    if (!ending) failAll('connection closed by peer')
  })

  connection.start(VERSIONS[job.protocol])

  let pingP = Promise.resolve()
  if (job.ping) {
    pingP = new Promise((resolve) => {
      const t0 = process.hrtime.bigint()
      connection.ping((err) => {
        if (err) sessionErrors.push('ping: ' + err.message)
        else report.pingMs = Number(process.hrtime.bigint() - t0) / 1e6
        resolve()
      })
      closedP.then(resolve)
    })
  }

  function runOne (i) {
    return new Promise((resolve) => {
      if (done[i]) return resolve()
      const req = requests[i]
      const res = results[i]
      const method = (req.method || 'GET').toUpperCase()
      const headers = Object.assign({}, req.headers || {})
      const hostHeader = headers.host || headers.Host ||
        ((job.servername || job.host || 'localhost') + ':' + job.port)
      delete headers.host
      delete headers.Host
      const bodyBytes = method === 'GET' ? 0 : (req.bodyBytes | 0)
      const resetAfter = req.resetAfterBytes | 0
      const hash = crypto.createHash('sha256')
      const bodyParts = req.captureBody ? [] : null

      const uri = { method, path: req.path, host: hostHeader, headers }
      if (req.priority !== undefined && req.priority !== null) {
        uri.priority = {
          parent: 0,
          exclusive: false,
          weight: transport.protocol.base.utils.priorityToWeight(req.priority)
        }
      }

      let stream
      function complete (err) {
        if (done[i]) return
        done[i] = true
        if (err && res.error === null) res.error = err
        res.sha256 = hash.digest('hex')
        if (bodyParts) res.body = Buffer.concat(bodyParts).toString('utf8')
        resolve()
      }
      completers[i] = complete

      // Request bodies are written only once SYN_STREAM is out: a write or
      // end() before that would make the transport send this SYN_STREAM
      // ahead of those of earlier requests, out of stream-id order.
      try {
        stream = connection.request(uri, (err) => {
          if (err) return complete('request: ' + err.message)
          if (bodyBytes > 0) pump()
        })
      } catch (e) {
        return complete('request: ' + e.message)
      }
      if (bodyBytes <= 0 && method !== 'GET') {
        // Like the transport does for GET: no body, so SYN_STREAM carries
        // FIN.
        stream._writableState.ended = true
        stream._writableState.finished = true
      }

      let gotResponse = false
      let ended = false
      stream.on('response', (status, h) => {
        gotResponse = true
        res.status = status
        res.headers = h
      })
      stream.on('headers', (h) => { res.trailers = h })
      stream.on('pushPromise', (push) => {
        const p = {
          id: push.id,
          path: push.path,
          host: push.host,
          method: push.method,
          status: 0,
          headers: {},
          bodyBytes: 0,
          sha256: '',
          body: '',
          error: null,
          beforeEnd: !ended
        }
        res.pushes.push(p)
        if (req.refusePushes) {
          push.abort()
          p.error = 'refused'
          return
        }
        const ph = crypto.createHash('sha256')
        const parts = []
        push.on('response', (status, h) => { p.status = status; p.headers = h })
        push.on('data', (chunk) => { ph.update(chunk); parts.push(chunk); p.bodyBytes += chunk.length })
        push.on('error', (err) => { p.error = err.message })
        push.on('end', () => {
          p.sha256 = ph.digest('hex')
          p.body = Buffer.concat(parts).toString('utf8')
        })
        push.resume()
      })
      stream.on('data', (chunk) => {
        if (done[i]) return
        if (resetAfter > 0 && res.bodyBytes + chunk.length >= resetAfter) {
          const take = resetAfter - res.bodyBytes
          hash.update(chunk.subarray(0, take))
          res.bodyBytes += take
          res.reset = true
          stream.abort()
          complete(null)
          return
        }
        hash.update(chunk)
        res.bodyBytes += chunk.length
        if (bodyParts) bodyParts.push(chunk)
      })
      // prepend: the transport's own 'end' listener emits 'close' first.
      stream.prependListener('end', () => {
        ended = true
        // Pushes still under way end on their own; give them a moment.
        const settle = () => complete(gotResponse ? null : 'stream ended without a response')
        const open = () => res.pushes.some((p) => p.error === null && p.sha256 === '')
        if (!open()) return settle()
        const t0 = Date.now()
        const poll = setInterval(() => {
          if (!open() || Date.now() - t0 > 5000) {
            clearInterval(poll)
            settle()
          }
        }, 5)
      })
      stream.on('error', (err) => complete(err.message))
      stream.on('close', () => {
        if (ended) return // the 'end' listener completes it
        complete(gotResponse ? 'stream closed before end of body' : 'stream closed without a response')
      })

      let sent = 0
      function pump () {
        while (sent < bodyBytes) {
          if (done[i]) return
          const n = Math.min(WRITE_CHUNK, bodyBytes - sent)
          const chunk = patternChunk(sent, n)
          sent += n
          if (!stream.write(chunk)) {
            stream.once('drain', pump)
            return
          }
        }
        stream.end()
      }
    })
  }

  const concurrency = job.concurrency > 0 ? job.concurrency : Math.max(1, requests.length)
  let next = 0
  async function worker () {
    while (next < requests.length) {
      const i = next++
      await runOne(i)
    }
  }
  const workers = []
  for (let w = 0; w < Math.min(concurrency, requests.length); w++) workers.push(worker())
  await Promise.all(workers)
  await pingP

  // Graceful close: GOAWAY(OK), then wait briefly for the socket to close.
  ending = true
  if (!closed) {
    try { connection.end() } catch (e) { sessionErrors.push('end: ' + e.message) }
    await Promise.race([closedP, new Promise((resolve) => setTimeout(resolve, 1000))])
  }
  socket.destroy()
  clearTimeout(deadline)
  finish(0)
}

main().catch((e) => {
  process.stderr.write('client.js: ' + (e && e.stack ? e.stack : e) + '\n')
  process.exit(1)
})
