'use strict'

// HTTP/2 client on node's built-in `http2` module (nghttp2 inside node; no
// npm package). It reads one JSON job from stdin, runs every request of the
// job over a single HTTP/2 session (one TCP or TLS connection) and prints
// one JSON report on stdout.
//
// Job:
//   { "url": "https://127.0.0.1:N" | "http://127.0.0.1:N",
//     "servername": "localhost",
//     "requests": [ { "method": "GET", "path": "/x", "headers": {...},
//                     "bodyBytes": N, "noContentLength": bool,
//                     "trailers": {...}, "captureBody": bool } ... ],
//     "concurrency": N, "timeoutMs": N }
//
// An https URL is HTTP/2 chosen by ALPN (the server's certificate is not
// verified); an http URL is HTTP/2 with prior knowledge (h2c). A request
// body is bodyBytes pattern bytes (byte i is i mod 251) written in 16 KiB
// writes honouring backpressure, with content-length unless
// noContentLength; trailers, when given, are sent after the body.
//
// Report:
//   { "protocol": "h2" | "h2c" | null, "sessionErrors": [ ... ],
//     "openStreams": [ ... ], // streams not closed 1 s after the last response
//     "remoteSettings": { ... },
//     "results": [ { "path", "status", "headers", "informational": [ {...} ],
//                    "trailers": {...} | null, "bodyBytes", "sha256",
//                    "error", "body"? } ... ] }   // in request order
//
// The exit status is 0 whenever a report was printed, including when
// requests or the connection failed (those are reported); it is non-zero
// only when the job itself is unusable.

const crypto = require('crypto')
const http2 = require('http2')

const WRITE_CHUNK = 16 * 1024

function usage (msg) {
  process.stderr.write('h2client.js: ' + msg + '\n')
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

// patternChunk returns bytes [offset, offset+size) of the pattern.
function patternChunk (offset, size) {
  const b = Buffer.allocUnsafe(size)
  for (let i = 0; i < size; i++) b[i] = (offset + i) % 251
  return b
}

// plain turns a node header object into JSON-friendly form: values are
// strings or arrays of strings; the sensitive-headers symbol is dropped.
function plain (h) {
  const out = {}
  for (const k of Object.keys(h)) {
    const v = h[k]
    out[k] = Array.isArray(v) ? v.map(String) : String(v)
  }
  return out
}

async function main () {
  let job
  try {
    job = JSON.parse(await readStdin())
  } catch (e) {
    usage('bad job: ' + e.message)
  }
  if (typeof job.url !== 'string' || !Array.isArray(job.requests)) usage('job needs url and requests')

  const report = { protocol: null, sessionErrors: [], openStreams: [], remoteSettings: null, results: [] }
  const results = job.requests.map((r) => ({
    path: r.path, status: 0, headers: {}, informational: [], trailers: null,
    bodyBytes: 0, sha256: '', error: ''
  }))
  report.results = results

  let printed = false
  function finish () {
    if (printed) return
    printed = true
    for (const r of results) delete r.done
    process.stdout.write(JSON.stringify(report) + '\n', () => process.exit(0))
  }
  const streams = [] // the request streams, by index
  const timer = setTimeout(() => {
    report.sessionErrors.push('job timed out after ' + job.timeoutMs + ' ms')
    streams.forEach((st, i) => {
      if (st && !st.closed) {
        report.sessionErrors.push('stream of request ' + i + ' (' + job.requests[i].path + ') still open: ' + JSON.stringify(st.state))
      }
    })
    for (const r of results) if (!r.error && !r.done) r.error = 'timed out'
    finish()
  }, job.timeoutMs || 30000)

  const session = http2.connect(job.url, {
    rejectUnauthorized: false,
    servername: job.servername || 'localhost',
    ALPNProtocols: ['h2']
  })
  session.on('error', (e) => report.sessionErrors.push('session error: ' + e.message))
  session.on('goaway', (code, last) => {
    if (code !== 0) report.sessionErrors.push('goaway code ' + code + ' last stream ' + last)
  })
  session.on('remoteSettings', (s) => { report.remoteSettings = s })
  await new Promise((resolve) => {
    session.once('connect', resolve)
    session.once('error', resolve)
    session.once('close', resolve)
  })
  if (session.destroyed) {
    for (const r of results) r.error = 'no session'
    clearTimeout(timer)
    finish()
    return
  }
  report.protocol = session.alpnProtocol || null

  function runOne (i) {
    const spec = job.requests[i]
    const res = results[i]
    return new Promise((resolve) => {
      const method = spec.method || 'GET'
      const bodyBytes = spec.bodyBytes || 0
      const hasTrailers = spec.trailers && Object.keys(spec.trailers).length > 0
      const headers = Object.assign({ ':method': method, ':path': spec.path }, spec.headers || {})
      if (bodyBytes > 0 && !spec.noContentLength) headers['content-length'] = String(bodyBytes)
      const endStream = bodyBytes === 0 && !hasTrailers
      let req
      try {
        req = session.request(headers, { endStream, waitForTrailers: hasTrailers })
        streams[i] = req
      } catch (e) {
        res.error = 'request: ' + e.message
        resolve()
        return
      }
      const hash = crypto.createHash('sha256')
      const body = []
      let settled = false
      function complete (err) {
        if (settled) return
        settled = true
        if (err && !res.error) res.error = err
        res.sha256 = hash.digest('hex')
        if (spec.captureBody) res.body = Buffer.concat(body).toString('utf8')
        res.done = true
        resolve()
      }
      // 'headers' carries the interim (1xx) responses, 'response' the final.
      req.on('headers', (h) => res.informational.push(plain(h)))
      req.on('response', (h) => {
        res.status = Number(h[':status'])
        res.headers = plain(h)
      })
      req.on('trailers', (h) => { res.trailers = plain(h) })
      req.on('data', (chunk) => {
        res.bodyBytes += chunk.length
        hash.update(chunk)
        if (spec.captureBody) body.push(chunk)
      })
      req.on('end', () => complete(''))
      req.on('error', (e) => complete('stream error: ' + e.message))
      req.on('close', () => complete(req.rstCode ? 'stream closed with code ' + req.rstCode : ''))
      if (hasTrailers) req.on('wantTrailers', () => req.sendTrailers(spec.trailers))
      if (endStream) return

      // The last chunk goes with end(), so that END_STREAM rides on the
      // last DATA frame, as curl and nghttp send it: nghttp2 (inside node)
      // sends no DATA frame, not even an empty one that ends the stream,
      // into a stream window of zero.
      let sent = 0
      function pump () {
        while (sent < bodyBytes) {
          const n = Math.min(WRITE_CHUNK, bodyBytes - sent)
          const chunk = patternChunk(sent, n)
          sent += n
          if (sent === bodyBytes) {
            req.end(chunk)
            return
          }
          if (!req.write(chunk)) {
            req.once('drain', pump)
            return
          }
        }
        req.end()
      }
      pump()
    })
  }

  let next = 0
  async function worker () {
    while (next < job.requests.length) {
      await runOne(next++)
    }
  }
  const workers = []
  const n = job.concurrency > 0 ? job.concurrency : job.requests.length
  for (let i = 0; i < Math.max(1, n); i++) workers.push(worker())
  await Promise.all(workers)
  clearTimeout(timer)
  // The session closes once every stream has. A stream whose response
  // has ended may still be open on our side: spdymux gives no stream
  // credit past a body of known length, and nghttp2 sends no DATA frame,
  // not even an empty one with END_STREAM, into a zero window. Such
  // streams are reported after a while, and the session destroyed.
  const closeTimer = setTimeout(() => {
    streams.forEach((st, i) => {
      if (st && !st.closed) {
        report.openStreams.push('request ' + i + ' (' + job.requests[i].path + '): ' + JSON.stringify(st.state))
      }
    })
    session.destroy()
    finish()
  }, 1000)
  session.close(() => {
    clearTimeout(closeTimer)
    finish()
  })
}

main().catch((e) => {
  process.stderr.write('h2client.js: ' + (e && e.stack ? e.stack : e) + '\n')
  process.exit(1)
})
