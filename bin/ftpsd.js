#!/usr/bin/env -S node --max-semi-space-size=4
// The V8 flag: see "Node.js runtime flag" in docs/admin-guide.md. The shebang covers `npx ftpsd` and global
// installs; `npm start`, the Dockerfile and the systemd unit pass the same flag to node themselves.
import '../dist/cli.js';
