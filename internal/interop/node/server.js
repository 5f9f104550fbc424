'use strict'

// SPDY server built directly on spdy-transport. It validates the interop
// client and serves as the independent comparison server in benchmarks.
//
// Usage:
//   node server.js [--tls | --plain] [--protocol P] [--host H] [--port N]
//                  [--cert FILE --key FILE] [--window-size N]
//
//   --tls        TLS with ALPN (default). --protocol limits the ALPN list to
//                one of spdy/3.1, spdy/3, spdy/2; by default all three are
//                offered, preferred in that order.
//   --plain      SPDY directly over TCP. With --protocol the version is
//                fixed; without it (or with "auto") the version is taken
//                from the first control frame (2 or 3) and switched to 3.1
//                when the client sends a WINDOW_UPDATE for stream 0.
//   --cert/--key PEM files. Without them a throwaway self-signed ECDSA
//                certificate for localhost/127.0.0.1 is made with openssl.
//   --port 0     (default) picks a free port.
//
// Once ready it prints "listening PORT" on stdout. It stops on SIGTERM,
// SIGINT or, when stdin is a pipe, when that pipe closes.
//
// Endpoints:
//   GET  /hello        "hello, world\n"
//   GET  /bytes/N      N bytes, byte i = i mod 251, with content-length
//   POST|PUT /echo     request body streamed back
//   GET  /status/N     empty response with status N
//   GET  /headers      request headers as JSON
//   HEAD of any GET endpoint answers its headers without a body.

const childProcess = require('child_process')
const fs = require('fs')
const net = require('net')
const os = require('os')
const path = require('path')
const tls = require('tls')
const transport = require('spdy-transport')

const VERSIONS = { 'spdy/3.1': 3.1, 'spdy/3': 3, 'spdy/2': 2 }
const ALL = ['spdy/3.1', 'spdy/3', 'spdy/2']
const CHUNK = 64 * 1024

function die (msg) {
  process.stderr.write('server.js: ' + msg + '\n')
  process.exit(2)
}

function parseArgs (argv) {
  const opts = { tls: true, protocol: null, host: '127.0.0.1', port: 0, cert: null, key: null, windowSize: 1 << 20 }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    const val = () => {
      if (i + 1 >= argv.length) die('missing value for ' + a)
      return argv[++i]
    }
    if (a === '--tls') opts.tls = true
    else if (a === '--plain') opts.tls = false
    else if (a === '--protocol') opts.protocol = val()
    else if (a === '--host') opts.host = val()
    else if (a === '--port') opts.port = parseInt(val(), 10)
    else if (a === '--cert') opts.cert = val()
    else if (a === '--key') opts.key = val()
    else if (a === '--window-size') opts.windowSize = parseInt(val(), 10)
    else die('unknown argument ' + a)
  }
  if (opts.protocol === 'auto' || opts.protocol === '') opts.protocol = null
  if (opts.protocol !== null && !(opts.protocol in VERSIONS)) die('bad --protocol ' + opts.protocol)
  if (!(opts.port >= 0 && opts.port <= 65535)) die('bad --port')
  if (!(opts.windowSize > 0)) die('bad --window-size')
  if ((opts.cert === null) !== (opts.key === null)) die('--cert and --key go together')
  return opts
}

function selfSigned () {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spdymux-node-cert-'))
  const keyFile = path.join(dir, 'key.pem')
  const certFile = path.join(dir, 'cert.pem')
  try {
    childProcess.execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1',
      '-nodes', '-keyout', keyFile, '-out', certFile, '-days', '2',
      '-subj', '/CN=localhost',
      '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1'
    ], { stdio: ['ignore', 'ignore', 'pipe'] })
    return { key: fs.readFileSync(keyFile), cert: fs.readFileSync(certFile) }
  } catch (e) {
    die('cannot create a certificate with openssl (' + e.message + '); pass --cert and --key')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const PATTERN = Buffer.alloc(CHUNK + 251)
for (let i = 0; i < PATTERN.length; i++) PATTERN[i] = i % 251

// writePattern writes total pattern bytes, honouring backpressure, then
// ends the stream.
function writePattern (stream, total) {
  let sent = 0
  function pump () {
    while (sent < total) {
      const n = Math.min(CHUNK, total - sent)
      const start = sent % 251
      const chunk = PATTERN.subarray(start, start + n)
      sent += n
      if (!stream.write(chunk)) {
        stream.once('drain', pump)
        return
      }
    }
    stream.end()
  }
  pump()
}

function reply (stream, status, headers, body) {
  stream.respond(status, headers)
  if (body && body.length > 0) stream.write(body)
  stream.end()
}

function handle (stream) {
  const method = (stream.method || 'GET').toUpperCase()
  const url = stream.path || '/'
  const p = url.split('?')[0]
  const head = method === 'HEAD'
  let m

  if (method === 'GET' || head) {
    if (p === '/hello') {
      const body = Buffer.from('hello, world\n')
      return reply(stream, 200, { 'content-type': 'text/plain', 'content-length': String(body.length) }, head ? null : body)
    }
    if ((m = /^\/bytes\/(\d+)$/.exec(p))) {
      const n = parseInt(m[1], 10)
      stream.respond(200, { 'content-type': 'application/octet-stream', 'content-length': String(n) })
      if (head) return stream.end()
      return writePattern(stream, n)
    }
    if ((m = /^\/status\/(\d{3})$/.exec(p))) {
      const code = parseInt(m[1], 10)
      const h = (code === 204 || code === 304 || code < 200) ? {} : { 'content-length': '0' }
      return reply(stream, code, h, null)
    }
    if (p === '/headers') {
      const body = Buffer.from(JSON.stringify(stream.headers) + '\n')
      return reply(stream, 200, { 'content-type': 'application/json', 'content-length': String(body.length) }, head ? null : body)
    }
  }

  if ((method === 'POST' || method === 'PUT') && p === '/echo') {
    const h = { 'content-type': 'application/octet-stream' }
    if (stream.headers['content-length'] !== undefined) h['content-length'] = stream.headers['content-length']
    stream.respond(200, h)
    stream.on('data', (chunk) => {
      if (!stream.write(chunk)) {
        stream.pause()
        stream.once('drain', () => stream.resume())
      }
    })
    stream.on('end', () => stream.end())
    return
  }

  if (p === '/hello' || p === '/headers' || p === '/echo' || /^\/(bytes|status)\/\d+$/.test(p)) {
    return reply(stream, 405, { 'content-length': '0' }, null)
  }
  const body = Buffer.from('not found\n')
  return reply(stream, 404, { 'content-type': 'text/plain', 'content-length': String(body.length) }, head ? null : body)
}

function serve (socket, opts, version) {
  const connection = transport.connection.create(socket, {
    protocol: 'spdy',
    isServer: true,
    windowSize: opts.windowSize,
    autoSpdy31: version === null
  })
  connection.on('error', (err) => process.stderr.write('server.js: session: ' + err.message + '\n'))
  socket.on('error', () => {})
  connection.on('stream', (stream) => {
    stream.on('error', () => {})
    try {
      handle(stream)
    } catch (e) {
      process.stderr.write('server.js: handler: ' + e.stack + '\n')
      stream.abort()
    }
  })
  if (version !== null) connection.start(version)
}

function main () {
  const opts = parseArgs(process.argv.slice(2))
  let server
  if (opts.tls) {
    const creds = opts.cert ? { cert: fs.readFileSync(opts.cert), key: fs.readFileSync(opts.key) } : selfSigned()
    server = tls.createServer(Object.assign({ ALPNProtocols: opts.protocol ? [opts.protocol] : ALL }, creds), (socket) => {
      const alpn = socket.alpnProtocol
      serve(socket, opts, alpn && alpn in VERSIONS ? VERSIONS[alpn] : null)
    })
    server.on('tlsClientError', () => {})
  } else {
    server = net.createServer((socket) => serve(socket, opts, opts.protocol ? VERSIONS[opts.protocol] : null))
  }
  server.on('error', (e) => die('listen: ' + e.message))
  server.listen(opts.port, opts.host, () => {
    process.stdout.write('listening ' + server.address().port + '\n')
  })
  const stop = () => process.exit(0)
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
  // When started with a pipe on stdin (as the Go tests do), stop when the
  // parent goes away and the pipe closes.
  let stdinIsPipe = false
  try { stdinIsPipe = fs.fstatSync(0).isFIFO() } catch (e) {}
  if (stdinIsPipe) {
    process.stdin.on('end', stop)
    process.stdin.on('error', () => {})
    process.stdin.resume()
  }
}

main()
