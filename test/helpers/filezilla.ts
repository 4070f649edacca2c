import { spawn, type ChildProcess } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { runProcess } from './clients.js';
import { stopGroup, waitFor, type XDisplay } from './xvfb.js';

// FileZilla (the GTK client) started against a test server on a private X display, with a fresh settings directory
// seeded so that no dialog stands between start-up and the directory listing: the server's certificate is already
// trusted, the welcome dialog was "already seen", and nothing asks before overwriting.

/** FileZilla's version as `filezilla -v` prints it ("3.63.0"); its welcome dialog is skipped for this version. */
export async function fileZillaVersion(display: XDisplay, scratchHome: string): Promise<string> {
  // -v still initialises GTK, hence the display; the scratch HOME keeps it from touching a real settings dir.
  const r = await runProcess('filezilla', ['-v'], { env: { DISPLAY: display.name, HOME: scratchHome, XDG_CONFIG_HOME: join(scratchHome, '.config') }, timeoutMs: 15_000 });
  const m = /FileZilla (\d+\.\d+\.\d+)/.exec(`${r.stdout}\n${r.stderr}`);
  if (m === null) throw new Error(`filezilla -v printed no version (exit ${r.code ?? r.signal}): ${r.stdout}${r.stderr}`);
  return m[1];
}

export interface FileZillaSeed {
  /** FileZilla's version: the welcome dialog is shown once per version. */
  version: string;
  host: string;
  port: number;
  /** The server's leaf certificate (PEM), trusted for host:port as if the user had ticked "Always trust". */
  certPem: string | Buffer;
  /** FileZilla writes its message log (Status/Command/Response lines) here. */
  logFile: string;
}

/** Writes filezilla.xml and trustedcerts.xml into `settingsDir` (~/.config/filezilla). */
export async function seedFileZillaSettings(settingsDir: string, seed: FileZillaSeed): Promise<void> {
  await mkdir(settingsDir, { recursive: true });
  const settings: Record<string, string> = {
    'Greeting version': seed.version,
    // What FileZilla itself records once it has asked whether to remember passwords.
    'Prompt password save': '1',
    'Update Check': '0',
    // Keeps FileZilla off D-Bus (it inhibits suspend through it during transfers).
    'Prevent idle sleep': '0',
    // 1 = overwrite: a target that exists never opens a question that would block the queue.
    'File exists action download': '1',
    'File exists action upload': '1',
    'Logging file': seed.logFile,
  };
  await writeFile(
    join(settingsDir, 'filezilla.xml'),
    xmlDocument(seed.version, `<Settings>${Object.entries(settings).map(([k, v]) => `<Setting name="${xml(k)}">${xml(v)}</Setting>`).join('')}</Settings>`),
  );

  // The format FileZilla's certificate store reads (and writes when "Always trust this certificate" is ticked): the
  // DER certificate in hex and its validity as Unix times; entries outside their validity are dropped on load.
  const cert = new X509Certificate(seed.certPem);
  const unix = (date: string) => Math.floor(new Date(date).getTime() / 1000);
  const entry = [
    `<Data>${cert.raw.toString('hex')}</Data>`,
    `<ActivationTime>${unix(cert.validFrom)}</ActivationTime>`,
    `<ExpirationTime>${unix(cert.validTo)}</ExpirationTime>`,
    `<Host>${xml(seed.host)}</Host>`,
    `<Port>${seed.port}</Port>`,
    '<TrustSANs>0</TrustSANs>',
  ].join('');
  await writeFile(join(settingsDir, 'trustedcerts.xml'), xmlDocument(seed.version, `<TrustedCerts><Certificate>${entry}</Certificate></TrustedCerts>`));
}

function xmlDocument(version: string, body: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<FileZilla3 version="${xml(version)}" platform="*nix">${body}</FileZilla3>\n`;
}

function xml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

export interface FileZillaOptions {
  display: XDisplay;
  /** Throwaway HOME; settings live in HOME/.config/filezilla (seed them first). */
  home: string;
  /** The local pane starts here (--local). */
  localDir: string;
  /** Connected to at start-up, e.g. ftpes://user:pass@127.0.0.1:2121 */
  url: string;
  /** Added to the environment (GNUTLS_SYSTEM_PRIORITY_FILE, ...). */
  env?: NodeJS.ProcessEnv;
}

export interface FileZilla {
  readonly child: ChildProcess;
  /** The main window's id, once it is shown. */
  mainWindow(timeoutMs: number): Promise<string>;
  /**
   * Selects `name` in the local or remote file list and presses Enter, which FileZilla answers by queueing the file
   * for upload (local pane) or download (remote pane) and starting the queue. A click in the empty part of the list
   * gives it the keyboard focus; typing a name selects the first entry that starts with it.
   */
  activateInPane(pane: 'local' | 'remote', name: string): Promise<void>;
  /** FileZilla's stdout and stderr so far. */
  output(): string;
  stop(): Promise<void>;
}

/** Where, as a fraction of the main window, each file list has empty space below its first few rows. */
const PANE_POINT = { local: { x: 0.23, y: 0.68 }, remote: { x: 0.75, y: 0.68 } } as const;

export function launchFileZilla(opts: FileZillaOptions): FileZilla {
  const { display, home } = opts;
  const child = spawn('filezilla', [`--local=${opts.localDir}`, opts.url], {
    env: {
      ...process.env,
      HOME: home,
      XDG_CONFIG_HOME: join(home, '.config'),
      XDG_CACHE_HOME: join(home, '.cache'),
      XDG_DATA_HOME: join(home, '.local', 'share'),
      DISPLAY: display.name,
      // English messages in the log file whatever the machine's locale.
      LANG: 'C.UTF-8',
      LC_ALL: 'C.UTF-8',
      // No accessibility bus and no session bus: nothing for a D-Bus autolaunch to leave running after the test.
      NO_AT_BRIDGE: '1',
      DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(home, 'no-session-bus')}`,
      ...opts.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const out: Buffer[] = [];
  child.stdout?.on('data', (b: Buffer) => out.push(b));
  child.stderr?.on('data', (b: Buffer) => out.push(b));
  child.on('error', (err) => out.push(Buffer.from(`spawn failed: ${err.message}\n`)));
  let windowId: string | null = null;

  const mainWindow = async (timeoutMs: number): Promise<string> => {
    windowId ??= await waitFor('the FileZilla main window', timeoutMs, async () => {
      if (child.exitCode !== null || child.signalCode !== null) throw new Error(`filezilla exited (${child.exitCode ?? child.signalCode}): ${Buffer.concat(out).toString()}`);
      return (await display.windows(' - FileZilla$'))[0];
    });
    return windowId;
  };

  return {
    child,
    mainWindow,
    async activateInPane(pane, name) {
      const id = await mainWindow(5_000);
      const geometry = Object.fromEntries(
        (await display.xdotool(['getwindowgeometry', '--shell', id]))
          .split('\n')
          .map((l) => l.split('='))
          .filter((kv) => kv.length === 2)
          .map(([k, v]) => [k, Number(v)]),
      );
      const point = PANE_POINT[pane];
      const x = Math.round(geometry.X + geometry.WIDTH * point.x);
      const y = Math.round(geometry.Y + geometry.HEIGHT * point.y);
      // No --sync: xdotool waits for the pointer to move, which never happens when it is already there.
      await display.xdotool(['mousemove', String(x), String(y)]);
      await sleep(100);
      await display.xdotool(['click', '1']);
      await sleep(200);
      await display.xdotool(['type', '--delay', '40', name]);
      // The list selects as characters arrive; give it a moment before Enter acts on the selection.
      await sleep(300);
      await display.xdotool(['key', 'Return']);
    },
    output: () => Buffer.concat(out).toString(),
    stop: () => stopGroup(child),
  };
}

/** FileZilla's message log file, or '' while it does not exist. */
export async function readFileZillaLog(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return '';
  }
}
