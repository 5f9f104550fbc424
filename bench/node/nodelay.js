'use strict'

// Preloaded with `node -r` in front of internal/interop/node/server.js, it
// makes every server socket use TCP_NODELAY, as Go's net package does by
// default. Without it Nagle's algorithm holds spdy-transport's small
// frames back until the client's delayed ACK (about 40 ms on Linux), and
// that wait, not the server's work, sets the request rate.
const net = require('net')
const tls = require('tls')

function withNoDelay (create) {
  return function (options, listener) {
    if (typeof options === 'function' || options === undefined) {
      listener = options
      options = {}
    }
    return create.call(this, Object.assign({}, options, { noDelay: true }), listener)
  }
}

net.createServer = withNoDelay(net.createServer)
tls.createServer = withNoDelay(tls.createServer)
