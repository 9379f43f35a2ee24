// The example against the real daemon (DOGPILED_BIN): one process is
// elected and publishes, another waits and gets the value, and an oversized
// value is refused with reason VALUE_TOO_LARGE naming the field.
'use strict';

const assert = require('node:assert');
const {spawn} = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');
const {after, before, test} = require('node:test');

const EXAMPLE = path.join(__dirname, '..', 'example.js');
let daemon;
let address;

// Resolves with the daemon's port once it has written its port file.
function waitForPort(file, child) {
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`dogpiled exited ${code}`)));
    const watcher = setInterval(() => {
      const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
      if (text.trim()) {
        clearInterval(watcher);
        resolve(text.trim());
      }
    }, 10);
  });
}

before(async () => {
  const bin = process.env.DOGPILED_BIN;
  assert.ok(bin, 'set DOGPILED_BIN to the dogpiled binary');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dogpiled-node-'));
  const portFile = path.join(dir, 'port');
  daemon = spawn(bin, ['--listen', '127.0.0.1:0', '--port-file', portFile,
                       '--state-dir', dir],
                 {stdio: 'ignore', env: {...process.env,
                                         DOGPILED_METRICS_LISTEN: ''}});
  address = `127.0.0.1:${await waitForPort(portFile, daemon)}`;
});

after(() => daemon.kill('SIGTERM'));

// Runs the example; `lines` yields its JSON lines as they come.
function run(...args) {
  const child = spawn(process.execPath, [EXAMPLE, address, ...args],
                      {stdio: ['pipe', 'pipe', 'inherit']});
  const lines = readline.createInterface({input: child.stdout})
      [Symbol.asyncIterator]();
  const exited = new Promise((resolve) => child.on('exit', resolve));
  return {child, exited,
          next: async () => JSON.parse((await lines.next()).value)};
}

test('one process creates, another gets its value', async () => {
  const creator = run('create', 'node', 'greeting');
  const elected = await creator.next();
  assert.strictEqual(elected.step, 'elected');
  const reader = run('get', 'node', 'greeting');
  creator.child.stdin.write('publish\n');
  assert.strictEqual((await creator.next()).step, 'published');
  const got = await reader.next();
  assert.strictEqual(got.outcome, 'OUTCOME_FRESH');
  assert.strictEqual(got.value, 'made by node');
  assert.strictEqual(await creator.exited, 0);
  assert.strictEqual(await reader.exited, 0);
});

test('an oversized value is refused with a reason naming the field',
     async () => {
  const oversized = run('oversized', 'node', 'big');
  const refused = await oversized.next();
  assert.strictEqual(refused.step, 'refused');
  assert.strictEqual(refused.code, 8);  // RESOURCE_EXHAUSTED
  assert.strictEqual(refused.reason, 'VALUE_TOO_LARGE');
  assert.strictEqual(refused.metadata.field, 'value');
  assert.strictEqual(refused.metadata.limit, String(1 << 20));
  assert.strictEqual(await oversized.exited, 0);
});
