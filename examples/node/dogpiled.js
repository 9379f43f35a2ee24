// A small dogpiled client for Node.js, loaded straight from proto/ with
// @grpc/proto-loader: a session kept alive on a KeepAlive stream, Acquire
// with a request_id (retried on UNAVAILABLE), Publish/Abandon, and the
// daemon's structured errors (google.rpc.ErrorInfo, RetryInfo) decoded into
// err.reason / err.metadata / err.retryDelayMs. docs/any-language.md walks
// through the same API for any language.
'use strict';

const crypto = require('node:crypto');
const path = require('node:path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const PROTO_DIR = process.env.DOGPILED_PROTO_DIR ||
    path.join(__dirname, '..', '..', 'proto');
const LOAD_OPTIONS = {
  keepCase: true,
  longs: String,  // uint64 ids and tokens exceed 2^53: keep them exact
  enums: String,
  defaults: true,
  includeDirs: [PROTO_DIR],
};

const definition = protoLoader.loadSync(
    ['dogpiled/v1/sessions.proto', 'dogpiled/v1/dogpile.proto',
     'dogpiled/v1/errors.proto'],
    LOAD_OPTIONS);
const v1 = grpc.loadPackageDefinition(definition).dogpiled.v1;

// google.rpc.Status and its details, from Debian's
// golang-github-gogo-googleapis-dev, as the C++ and Python builds use (an
// npm copy would need a newer node than Debian's); google.protobuf's own
// types are built into protobufjs.
const GOOGLE_PROTOS = process.env.GOOGLEAPIS_PROTO_DIR ||
    '/usr/share/gocode/src/github.com/gogo/googleapis';
const rpcRoot = new protobuf.Root();
rpcRoot.resolvePath = (origin, target) => path.join(GOOGLE_PROTOS, target);
rpcRoot.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto']);
const RpcStatus = rpcRoot.lookupType('google.rpc.Status');
const ErrorInfo = rpcRoot.lookupType('google.rpc.ErrorInfo');
const RetryInfo = rpcRoot.lookupType('google.rpc.RetryInfo');

// Adds reason, metadata and retryDelayMs to a gRPC error from the
// grpc-status-details-bin trailer, so callers act on the stable reason
// (dogpiled.v1.ErrorReason) rather than the message text.
function withDetails(err) {
  err.reason = '';
  err.errorMetadata = {};
  err.retryDelayMs = null;
  const raw = err.metadata && err.metadata.get('grpc-status-details-bin');
  if (!raw || raw.length === 0) {
    return err;
  }
  const status = RpcStatus.decode(raw[0]);
  for (const any of status.details) {
    const name = any.type_url.slice(any.type_url.lastIndexOf('/') + 1);
    if (name === 'google.rpc.ErrorInfo') {
      const info = ErrorInfo.decode(any.value);
      err.reason = info.reason;
      err.errorMetadata = {...info.metadata};
    } else if (name === 'google.rpc.RetryInfo') {
      const delay = RetryInfo.decode(any.value).retry_delay || {};
      err.retryDelayMs = Number(delay.seconds || 0) * 1000 +
          Math.floor((delay.nanos || 0) / 1e6);
    }
  }
  return err;
}

function unary(client, method, request, timeoutMs) {
  return new Promise((resolve, reject) => {
    client[method](request, {deadline: Date.now() + timeoutMs},
                   (err, response) => err ? reject(withDetails(err)) :
                                            resolve(response));
  });
}

// A random non-zero uint64, as a decimal string (one per logical call).
function newRequestId() {
  let id = 0n;
  while (id === 0n) {
    id = crypto.randomBytes(8).readBigUInt64BE();
  }
  return id.toString();
}

const RETRY_ATTEMPTS = 4;

class Client {
  constructor(address, {rpcTimeoutMs = 5000} = {}) {
    const credentials = grpc.credentials.createInsecure();
    this.sessions = new v1.Sessions(address, credentials);
    this.dogpile = new v1.Dogpile(address, credentials,
                                  {'grpc.max_send_message_length': -1});
    this.rpcTimeoutMs = rpcTimeoutMs;
    this.sessionId = null;
    this.keepAlive = null;
  }

  // Opens a session and renews it every third of its TTL on one stream.
  async open(ttlMs = 0) {
    const opened = await unary(this.sessions, 'Open',
                               {ttl_ms: ttlMs, client_name: 'node example'},
                               this.rpcTimeoutMs);
    this.sessionId = opened.session_id;
    this.keepAlive = this.sessions.KeepAlive();
    this.keepAlive.on('data', () => {});
    this.keepAlive.on('error', () => {});  // the lease ends with its TTL
    const renew = () => this.keepAlive.write({session_id: this.sessionId});
    renew();
    this.renewTimer = setInterval(renew, Number(opened.ttl_ms) / 3);
    return opened;
  }

  // Acquire, with a request_id kept across retries of UNAVAILABLE, so the
  // daemon can hand back the grant a lost answer carried.
  async acquire(registry, key, {expireMs = 0, waitTimeoutMs = 0} = {}) {
    const request = {
      registry, key, session_id: this.sessionId, expire_ms: expireMs,
      wait_timeout_ms: waitTimeoutMs, request_id: newRequestId(),
    };
    let pauseMs = 50;
    for (let attempt = 1; ; ++attempt) {
      try {
        return await unary(this.dogpile, 'Acquire', request,
                           this.rpcTimeoutMs + waitTimeoutMs);
      } catch (err) {
        if (err.code !== grpc.status.UNAVAILABLE ||
            attempt === RETRY_ATTEMPTS) {
          throw err;
        }
        await new Promise((r) => setTimeout(r, pauseMs));  // backoff
        pauseMs *= 2;
      }
    }
  }

  publish(registry, key, token, value) {
    return unary(this.dogpile, 'Publish',
                 {registry, key, session_id: this.sessionId, token, value},
                 this.rpcTimeoutMs);
  }

  abandon(registry, key, token, reason) {
    return unary(this.dogpile, 'Abandon',
                 {registry, key, session_id: this.sessionId, token, reason},
                 this.rpcTimeoutMs);
  }

  async close() {
    clearInterval(this.renewTimer);
    if (this.keepAlive) {
      this.keepAlive.end();
    }
    if (this.sessionId !== null) {
      await unary(this.sessions, 'Close', {session_id: this.sessionId},
                  this.rpcTimeoutMs).catch(() => {});
    }
    // Not close(): on a Sessions client that name is the Close RPC.
    this.sessions.getChannel().close();
    this.dogpile.getChannel().close();
  }
}

module.exports = {Client, withDetails, newRequestId, grpc};
