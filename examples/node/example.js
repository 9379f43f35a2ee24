#!/usr/bin/env node
// The dogpile protocol from Node.js, one step per process:
//
//   node example.js ADDRESS create REGISTRY KEY   # elected creator: prints
//        "elected token=N", waits for a line on stdin, publishes, exits
//   node example.js ADDRESS get REGISTRY KEY      # waits for the value
//   node example.js ADDRESS oversized REGISTRY KEY  # a 2 MiB value: prints
//        the daemon's ErrorInfo reason and metadata
//
// Each prints one JSON line per step, so a script (or the test beside it)
// can follow along.
'use strict';

const readline = require('node:readline');
const {Client} = require('./dogpiled');

function say(what) {
  process.stdout.write(JSON.stringify(what) + '\n');
}

function line() {
  return new Promise((resolve) => {
    readline.createInterface({input: process.stdin}).once('line', resolve);
  });
}

async function main([address, command, registry, key]) {
  const client = new Client(address);
  await client.open();
  try {
    if (command === 'create') {
      const r = await client.acquire(registry, key);
      if (r.outcome !== 'OUTCOME_CREATE') {
        say({step: 'not elected', outcome: r.outcome});
        return 1;
      }
      say({step: 'elected', token: r.token});
      await line();  // "publish": the value is ready
      const published = await client.publish(
          registry, key, r.token, Buffer.from('made by node'));
      say({step: 'published', created_time: published.created_time});
    } else if (command === 'get') {
      // No value yet and someone creating: park until it is published.
      const r = await client.acquire(registry, key, {waitTimeoutMs: 30000});
      say({step: 'got', outcome: r.outcome, value: r.value.toString()});
    } else if (command === 'oversized') {
      const r = await client.acquire(registry, key);
      try {
        await client.publish(registry, key, r.token,
                             Buffer.alloc(2 << 20, 'x'));
        say({step: 'stored'});
        return 1;
      } catch (err) {
        say({step: 'refused', code: err.code, reason: err.reason,
             metadata: err.errorMetadata});
        await client.abandon(registry, key, r.token, 'value too large');
      }
    } else {
      console.error('usage: example.js ADDRESS create|get|oversized ' +
                    'REGISTRY KEY');
      return 2;
    }
    return 0;
  } finally {
    await client.close();
  }
}

main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err) => {
      console.error(`${err.message} (reason ${err.reason || 'none'})`);
      process.exit(1);
    });
