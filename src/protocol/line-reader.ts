/**
 * Frames the control connection's bytes into command lines. Pure: fed Buffers, returns events; no sockets.
 *
 * - Lines end in CRLF (RFC 959); a bare LF is accepted too because many scripted clients send it.
 * - Telnet sequences (RFC 854) are removed: IAC IAC is a literal 0xFF byte, IAC + WILL/WONT/DO/DONT + option and
 *   IAC + single-byte commands (IP, DM, ... sent by clients before ABOR) are dropped; a subnegotiation (IAC SB) is
 *   dropped up to IAC SE or the end of the line.
 * - A line longer than maxLineBytes is discarded up to its end and reported once as 'overlong', so a client cannot
 *   grow our memory by never sending a newline.
 */
export type LineEvent = { kind: 'line'; bytes: Buffer } | { kind: 'overlong'; bytes: number };

const IAC = 0xff;
const LF = 0x0a;
const CR = 0x0d;
const WILL = 251;
const DONT = 254;
const SUBNEG_START = 250; // SB
const SUBNEG_END = 240; // SE

type TelnetState = 'data' | 'iac' | 'option' | 'subneg' | 'subnegIac';

export class LineReader {
  readonly #maxLineBytes: number;
  readonly #buf: Buffer;
  #len = 0;
  #discarding = false;
  #discarded = 0;
  #telnet: TelnetState = 'data';

  constructor(maxLineBytes: number) {
    this.#maxLineBytes = maxLineBytes;
    // One fixed buffer per connection: memory per session is bounded by the cap, whatever the client sends.
    this.#buf = Buffer.allocUnsafe(maxLineBytes);
  }

  /** Bytes of an unfinished line held back. Used at AUTH TLS: anything buffered there is plaintext injection. */
  get pendingBytes(): number {
    return this.#len + this.#discarded;
  }

  push(chunk: Buffer): LineEvent[] {
    const events: LineEvent[] = [];
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i]!;
      switch (this.#telnet) {
        case 'iac':
          if (byte === IAC) {
            this.#telnet = 'data';
            break; // escaped 0xFF: fall through to store it below
          }
          this.#telnet = byte >= WILL && byte <= DONT ? 'option' : byte === SUBNEG_START ? 'subneg' : 'data';
          continue;
        case 'option':
          this.#telnet = 'data';
          continue;
        case 'subneg':
        case 'subnegIac':
          // FTP clients never negotiate Telnet options; an unterminated SB (binary garbage) must not swallow every
          // later command, so a line end always ends it.
          if (byte === LF) {
            this.#telnet = 'data';
            events.push(this.#endLine());
          } else if (this.#telnet === 'subnegIac') this.#telnet = byte === SUBNEG_END ? 'data' : 'subneg';
          else if (byte === IAC) this.#telnet = 'subnegIac';
          continue;
        case 'data':
          if (byte === IAC) {
            this.#telnet = 'iac';
            continue;
          }
          if (byte === LF) {
            events.push(this.#endLine());
            continue;
          }
          break;
      }
      this.#store(byte);
    }
    return events;
  }

  #store(byte: number): void {
    if (this.#discarding) {
      this.#discarded++;
      return;
    }
    if (this.#len === this.#maxLineBytes) {
      this.#discarding = true;
      this.#discarded = this.#len + 1;
      this.#len = 0;
      return;
    }
    this.#buf[this.#len++] = byte;
  }

  #endLine(): LineEvent {
    if (this.#discarding) {
      const bytes = this.#discarded;
      this.#discarding = false;
      this.#discarded = 0;
      return { kind: 'overlong', bytes };
    }
    let end = this.#len;
    if (end > 0 && this.#buf[end - 1] === CR) end--;
    const line = Buffer.from(this.#buf.subarray(0, end));
    this.#len = 0;
    return { kind: 'line', bytes: line };
  }
}
