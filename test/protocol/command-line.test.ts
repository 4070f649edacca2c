import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseCommandLine, redactCommand } from '../../src/protocol/command-line.js';

const parse = (s: string | Buffer) => parseCommandLine(typeof s === 'string' ? Buffer.from(s, 'utf8') : s);

describe('parseCommandLine', () => {
  it('reads verbs case-insensitively', () => {
    for (const v of ['noop', 'NOOP', 'nOoP', 'NoOp']) {
      assert.deepEqual(parse(v), { ok: true, verb: 'NOOP', arg: '', raw: v });
    }
    const r = parse('user Alice');
    assert.ok(r.ok);
    assert.equal(r.verb, 'USER');
    assert.equal(r.arg, 'Alice', 'the argument keeps its case');
  });

  it('keeps the argument verbatim after the one separating space', () => {
    const cases: Array<[string, string]> = [
      ['STOR  leading space.txt', ' leading space.txt'],
      ['STOR trailing space.txt  ', 'trailing space.txt  '],
      ['CWD "quoted dir"', '"quoted dir"'],
      ["RETR it's \"here\"", 'it\'s "here"'],
      ['MKD a\tb', 'a\tb'],
      ['CWD \u00dcn\u00efc\u00f8d\u00e9 \u65e5\u672c', '\u00dcn\u00efc\u00f8d\u00e9 \u65e5\u672c'],
      ['STOR ', ''],
    ];
    for (const [line, arg] of cases) {
      const r = parse(line);
      assert.ok(r.ok, line);
      assert.equal(r.arg, arg, line);
    }
  });

  it('refuses invalid UTF-8 instead of guessing (RFC 2640)', () => {
    for (const bytes of [[0xc3, 0x28], [0xe2, 0x82], [0xed, 0xa0, 0x80], [0xc0, 0xaf]]) {
      assert.deepEqual(parse(Buffer.from([...Buffer.from('CWD '), ...bytes])), { ok: false, problem: 'invalid_utf8' });
    }
  });

  it('refuses malformed verbs and reports empty lines', () => {
    for (const line of ['NO0P', 'AB', 'TOOLONG', '\0NOOP', 'NOOP\0', ' NOOP', 'N-OP x', '\u00dcSER x']) {
      assert.deepEqual(parse(line), { ok: false, problem: 'bad_verb' }, JSON.stringify(line));
    }
    for (const line of ['', '   ', '\t']) assert.deepEqual(parse(line), { ok: false, problem: 'empty' });
  });

  it('keeps NUL bytes inside the argument (the command decides what to do with them)', () => {
    const r = parse('RETR a\0b');
    assert.ok(r.ok);
    assert.equal(r.arg, 'a\0b');
  });
});

describe('redactCommand', () => {
  it('never lets a password through', () => {
    assert.equal(redactCommand('PASS', 'hunter2'), 'PASS [redacted]');
    assert.equal(redactCommand('ACCT', 'hunter2'), 'ACCT [redacted]');
    assert.equal(redactCommand('USER', 'alice'), 'USER alice');
    assert.ok(redactCommand('CWD', 'x'.repeat(5000)).length < 600, 'long arguments are truncated for the log');
  });
});
