import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Permission } from '../../src/config/schema.js';
import type { FileInfo } from '../../src/storage/backend.js';
import { formatListLine, formatMdtm, formatMlsxFacts, isListableName, mlsxPerm, parseMfmtTime } from '../../src/storage/listing-format.js';

const now = new Date(Date.UTC(2026, 10, 30, 12, 0, 0));
function info(over: Partial<FileInfo>): FileInfo {
  return { name: 'name', type: 'file', size: 1024, mtime: new Date(Date.UTC(2026, 10, 23, 21, 32, 5)), mode: 0o644, unique: '803g2a', ...over };
}

describe('formatListLine', () => {
  it('prints recent files with the time of day, as vsftpd does', () => {
    assert.equal(formatListLine(info({}), now), '-rw-r--r--    1 ftp      ftp          1024 Nov 23 21:32 name');
  });

  it('prints files older than six months and future files with the year', () => {
    assert.equal(formatListLine(info({ mtime: new Date(Date.UTC(2024, 10, 3, 8, 0)) }), now), '-rw-r--r--    1 ftp      ftp          1024 Nov 03  2024 name');
    assert.equal(formatListLine(info({ mtime: new Date(Date.UTC(2027, 0, 1)) }), now), '-rw-r--r--    1 ftp      ftp          1024 Jan 01  2027 name');
  });

  it('prints directories, links, special bits, big sizes and names with spaces', () => {
    assert.equal(formatListLine(info({ type: 'dir', mode: 0o755, size: 4096, name: 'my dir' }), now), 'drwxr-xr-x    1 ftp      ftp          4096 Nov 23 21:32 my dir');
    assert.equal(formatListLine(info({ type: 'link', mode: 0o777, size: 7 }), now), 'lrwxrwxrwx    1 ftp      ftp             7 Nov 23 21:32 name');
    assert.equal(formatListLine(info({ mode: 0o4755 }), now).slice(0, 10), '-rwsr-xr-x');
    assert.equal(formatListLine(info({ mode: 0o1777, type: 'dir' }), now).slice(0, 10), 'drwxrwxrwt');
    assert.equal(formatListLine(info({ size: 123_456_789_012 }), now), '-rw-r--r--    1 ftp      ftp      123456789012 Nov 23 21:32 name');
  });

  it('never shows a CR or LF name as listable', () => {
    assert.equal(isListableName('a\r\n226 x'), false);
    assert.equal(isListableName('a b é'), true);
  });
});

describe('formatMlsxFacts', () => {
  it('formats RFC 3659 facts with a UTC modify time', () => {
    assert.equal(formatMlsxFacts(info({}), 'adfrw'), 'type=file;size=1024;modify=20261123213205;perm=adfrw;unique=803g2a; name');
  });

  it('formats directories, cdir/pdir and full pathnames', () => {
    const dir = info({ type: 'dir', name: 'sub' });
    assert.equal(formatMlsxFacts(dir, 'el'), 'type=dir;modify=20261123213205;perm=el;unique=803g2a; sub');
    assert.equal(formatMlsxFacts(dir, 'el', { role: 'cdir', name: '/a/sub' }), 'type=cdir;modify=20261123213205;perm=el;unique=803g2a; /a/sub');
    assert.equal(formatMlsxFacts(dir, 'el', { role: 'pdir' }).startsWith('type=pdir;'), true);
    assert.equal(formatMlsxFacts(info({ type: 'link' }), 'df').startsWith('type=OS.unix=symlink;modify='), true);
  });

  it('computes perm letters from the user permissions', () => {
    const all = new Set<Permission>(['list', 'download', 'upload', 'delete', 'rename', 'mkdir']);
    assert.equal(mlsxPerm('file', all), 'adfrw');
    assert.equal(mlsxPerm('dir', all), 'cdeflmp');
    assert.equal(mlsxPerm('cdir', all), 'cdeflmp');
    const readOnly = new Set<Permission>(['list', 'download']);
    assert.equal(mlsxPerm('file', readOnly), 'r');
    assert.equal(mlsxPerm('dir', readOnly), 'el');
    assert.equal(mlsxPerm('link', all), 'df');
    assert.equal(mlsxPerm('file', new Set<Permission>(['upload'])), 'aw');
  });
});

describe('MDTM and MFMT times', () => {
  it('formats UTC YYYYMMDDHHMMSS', () => {
    assert.equal(formatMdtm(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))), '20260102030405');
    assert.equal(formatMdtm(new Date(Date.UTC(1999, 11, 31, 23, 59, 59))), '19991231235959');
  });

  it('parses valid time-vals, with fractions', () => {
    assert.equal(parseMfmtTime('20261123213200')?.toISOString(), '2026-11-23T21:32:00.000Z');
    assert.equal(parseMfmtTime('20261123213200.5')?.toISOString(), '2026-11-23T21:32:00.500Z');
    assert.equal(parseMfmtTime('20261123213200.123456')?.toISOString(), '2026-11-23T21:32:00.123Z');
    assert.equal(parseMfmtTime('20240229000000')?.toISOString(), '2024-02-29T00:00:00.000Z');
    assert.equal(parseMfmtTime('00500101000000')?.getUTCFullYear(), 50);
    const back = parseMfmtTime(formatMdtm(new Date(Date.UTC(2001, 5, 7, 8, 9, 10))));
    assert.equal(back?.getTime(), Date.UTC(2001, 5, 7, 8, 9, 10));
  });

  it('rejects anything else', () => {
    for (const bad of ['', '2026112321320', '202611232132000', '20261323213200', '20261100213200', '20230229000000', '20261123243200', '20261123216000', '20261123213261', ' 20261123213200', '20261123213200 ', '20261123213200.', '2026-11-23 21:32', '+0261123213200', '20261123213200Z']) {
      assert.equal(parseMfmtTime(bad), null, JSON.stringify(bad));
    }
  });
});
