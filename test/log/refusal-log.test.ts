import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { ControlClient } from '../helpers/control-client.js';
import { startTestServer, type TestServer } from '../helpers/server.js';

// A client that sends thousands of commands the server refuses must not be able to fill the log: each session logs
// its first refusals in full, then a summary line with a count. Paths in the log are the client's virtual paths,
// never where the server keeps the files.

const ALICE = { name: 'alice', password: 'alice-secret' };
const COMMANDS = 5_000;

describe('refused commands in the log', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({ users: [ALICE], config: { defender: { threshold: 1_000_000 } } });
  });
  after(() => t.close());

  it(`${COMMANDS} pipelined refused commands write a bounded log, with virtual paths, and the session still answers`, async () => {
    const c = await ControlClient.loggedIn(t.port, ALICE.name, ALICE.password);
    const sid = t.logs().find((l) => l.event === 'login')?.sid;
    try {
      c.write('RNFR nothere/x\r\n'.repeat(COMMANDS));
      for (let i = 0; i < COMMANDS; i++) {
        const r = await c.read();
        assert.equal(r?.code, 550, `reply ${i}: ${r?.text}`);
      }
      assert.equal((await c.send('NOOP')).code, 200, 'the session still answers');
    } finally {
      c.close();
    }
    const deadline = Date.now() + 3_000;
    while (!t.logs().some((l) => l.sid === sid && l.event === 'refusals_not_logged') && Date.now() < deadline) await sleep(20);

    // What the server writes at its default level (info); the test logger also keeps debug lines.
    const lines = t.logs().filter((l) => l.sid === sid && (l.level as number) >= 30).map((l) => JSON.stringify(l));
    const bytes = lines.reduce((n, l) => n + l.length + 1, 0);
    console.log(`# ${COMMANDS} refused commands: ${lines.length} log lines, ${bytes} bytes at level info`);
    assert.ok(bytes < 20_000, `${bytes} bytes of log for one session`);
    assert.deepEqual(lines.filter((l) => l.includes(t.dir)), [], 'no log line names the server-side path');

    const refused = t.logs().filter((l) => l.sid === sid && l.msg === 'command refused');
    assert.equal(refused[0]?.path, '/nothere/x', 'the virtual path is logged');
    const summaries = t.logs().filter((l) => l.sid === sid && l.event === 'refusals_not_logged');
    const counted = summaries.reduce((n, l) => n + (l.count as number), 0);
    assert.equal(refused.length + counted, COMMANDS, 'every refusal is either logged or counted');
  });
});
