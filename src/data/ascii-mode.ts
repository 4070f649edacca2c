import { Transform, type TransformCallback } from 'node:stream';

/**
 * TYPE A (RFC 959 §3.1.1.1): text travels with CRLF line ends. Files are stored with LF, so downloads turn bare LF
 * into CRLF and uploads turn CRLF into LF. The last byte of a chunk is remembered so a pair split across chunks is
 * handled.
 */
const CR = 0x0d;
const LF = 0x0a;

export function lfToCrlf(): Transform {
  let prev = 0;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const out: number[] = [];
      for (const byte of chunk) {
        if (byte === LF && prev !== CR) out.push(CR);
        out.push(byte);
        prev = byte;
      }
      cb(null, Buffer.from(out));
    },
  });
}

export function crlfToLf(): Transform {
  let pendingCr = false;
  return new Transform({
    transform(chunk: Buffer, _enc, cb: TransformCallback) {
      const out: number[] = [];
      for (const byte of chunk) {
        if (pendingCr) {
          pendingCr = false;
          if (byte !== LF) out.push(CR);
        }
        if (byte === CR) pendingCr = true;
        else out.push(byte);
      }
      cb(null, Buffer.from(out));
    },
    flush(cb: TransformCallback) {
      cb(null, pendingCr ? Buffer.from([CR]) : undefined);
    },
  });
}
