// Native addons (better-sqlite3 for the embedded store, argon2 for password hashes) are compiled at `npm install`.
// npm 11 can skip dependency install scripts that package.json's allowScripts does not cover (this project lists
// them); a copy installed with scripts skipped, or built for another Node version, fails to load. Then rebuild it
// here, once, so `npm install && npm start` works on a fresh machine either way.
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const checks = {
  'better-sqlite3': () => new (require('better-sqlite3'))(':memory:').close(),
  argon2: () => require('argon2'),
};

for (const [name, load] of Object.entries(checks)) {
  try {
    load();
    continue;
  } catch (err) {
    process.stderr.write(`ftpsd: ${name} is not built (${err.message.split('\n')[0]}); building it now (a minute or two)\n`);
  }
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const r = spawnSync(npm, ['rebuild', name, '--foreground-scripts'], { stdio: 'inherit' });
  if (r.status !== 0) {
    process.stderr.write(`ftpsd: building ${name} failed; it needs python3, make and a C++ compiler (apt-get install python3 make g++)\n`);
    process.exit(1);
  }
}
