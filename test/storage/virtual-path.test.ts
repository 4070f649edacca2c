import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FtpError } from '../../src/errors.js';
import { isVirtualWithin, nameProblem, resolveVirtualPath, virtualBaseName, virtualJoin, virtualParent } from '../../src/storage/virtual-path.js';

const limits = { maxPathBytes: 96, maxNameBytes: 24 };
const resolve = (cwd: string, p: string) => resolveVirtualPath(cwd, p, limits);

function refused(cwd: string, p: string, reason: string): void {
  assert.throws(() => resolve(cwd, p), (err: unknown) => err instanceof FtpError && err.code === 553 && err.reason === reason, `${JSON.stringify(p)} should be refused (${reason})`);
}

describe('resolveVirtualPath', () => {
  it('keeps traversal attempts inside the home', () => {
    const corpus: Array<[string, string, string]> = [
      ['/', '../../etc/passwd', '/etc/passwd'],
      ['/a/b', '../../../../etc/passwd', '/etc/passwd'],
      ['/', '/../..', '/'],
      ['/', '..', '/'],
      ['/a', '/..', '/'],
      ['/a/b', '..', '/a'],
      ['/a', './../a/./b/../c', '/a/c'],
      ['/', '..%2f..%2fetc%2fpasswd', '/..%2f..%2fetc%2fpasswd'],
      ['/', '%2e%2e/x', '/%2e%2e/x'],
      ['/', '...', '/...'],
      ['/', '//a///b//', '/a/b'],
      ['/d', '', '/d'],
      ['/d', '.', '/d'],
    ];
    for (const [cwd, input, expected] of corpus) assert.equal(resolve(cwd, input), expected, `${cwd} + ${input}`);
  });

  it('treats absolute client paths as relative to the home', () => {
    assert.equal(resolve('/deep/dir', '/x'), '/x');
    assert.equal(resolve('/deep/dir', 'x'), '/deep/dir/x');
  });

  it('refuses backslashes, NUL, CR and LF', () => {
    refused('/', '..\\..\\etc\\passwd', 'backslash_in_name');
    refused('/', 'a\\b', 'backslash_in_name');
    refused('/', 'a\0b', 'nul_in_name');
    refused('/', 'a\r\n226 fake', 'crlf_in_name');
  });

  it('refuses over-long names and paths counted in UTF-8 bytes', () => {
    assert.equal(resolve('/', 'a'.repeat(24)), `/${'a'.repeat(24)}`);
    refused('/', 'a'.repeat(25), 'name_too_long');
    // 12 two-byte characters are 24 bytes and fit; 13 (26 bytes) do not, although 13 characters would.
    assert.equal(resolve('/', 'é'.repeat(12)), `/${'é'.repeat(12)}`);
    refused('/', 'é'.repeat(13), 'name_too_long');
    assert.equal(resolve('/', Array.from({ length: 4 }, () => 'x'.repeat(23)).join('/')).length, 96);
    refused('/', Array.from({ length: 5 }, () => 'x'.repeat(23)).join('/'), 'path_too_long');
    // A long name removed again by ".." is still refused: nothing over the limit reaches the backend.
    refused('/', `${'a'.repeat(25)}/..`, 'name_too_long');
  });

  it('refuses the hidden upload names', () => {
    refused('/', '.ftpsd-partial.x', 'reserved_name');
    refused('/', 'd/.ftpsd-upload-abc.x', 'reserved_name');
    assert.equal(resolve('/', '.ftpsd'), '/.ftpsd');
  });

  it('accepts spaces and UTF-8 names, refuses lone surrogates', () => {
    assert.equal(resolve('/', 'my file.txt'), '/my file.txt');
    assert.equal(resolve('/ü', '日本'), '/ü/日本');
    refused('/', 'bad\uD800', 'invalid_utf8');
  });

  it('nameProblem is null for ordinary names', () => {
    assert.equal(nameProblem('report 2026.pdf', 255), null);
  });
});

describe('virtual path helpers', () => {
  it('split and join', () => {
    assert.equal(virtualParent('/a/b'), '/a');
    assert.equal(virtualParent('/a'), '/');
    assert.equal(virtualParent('/'), '/');
    assert.equal(virtualBaseName('/a/b'), 'b');
    assert.equal(virtualBaseName('/'), '/');
    assert.equal(virtualJoin('/', 'x'), '/x');
    assert.equal(virtualJoin('/a', 'x'), '/a/x');
    assert.equal(isVirtualWithin('/a/b', '/a'), true);
    assert.equal(isVirtualWithin('/ab', '/a'), false);
    assert.equal(isVirtualWithin('/a', '/'), true);
  });
});
