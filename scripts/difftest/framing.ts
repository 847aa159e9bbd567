/**
 * Where a reply ends. Each request is followed by a sentinel numbered for it (text: an mg of a
 * key never stored, with an opaque, answered `EN O<n>`; binary: a Noop with opaque n); a reply is
 * everything received before the sentinel's answer. Values are skipped by their declared length,
 * and the number is new for every request, so nothing a request makes a server answer (even a
 * data block run as commands) can pass for the sentinel's answer.
 */
const SENTINEL_KEY = '__difftest_sentinel';

export function textSentinel(n: number): Buffer {
  return Buffer.from(`mg ${SENTINEL_KEY} Os${n}\r\n`, 'latin1');
}

export function binarySentinel(n: number): Buffer {
  const b = Buffer.alloc(24);
  b[0] = 0x80;
  b[1] = 0x0a;
  b.writeUInt32BE(n >>> 0, 12);
  return b;
}

/** The reply's length and the bytes consumed with the sentinel's answer, or null while incomplete. */
export interface Framed {
  reply: number;
  consumed: number;
}

/** A text reply's pieces: each line (without CR LF) and, after VALUE / VA lines, the data block. */
export interface TextPiece {
  line: string;
  data?: Buffer;
}

/** Splits text replies into lines and data blocks; null when `buf` ends inside a piece. */
export function textPieces(buf: Buffer, sentinel: number | null): { pieces: TextPiece[]; end: number; sentinel: boolean; consumed: number } | null {
  const pieces: TextPiece[] = [];
  let p = 0;
  while (p < buf.length) {
    const nl = buf.indexOf('\r\n', p, 'latin1');
    if (nl < 0) return null;
    const line = buf.toString('latin1', p, nl);
    if (sentinel !== null && line === `EN Os${sentinel}`) return { pieces, end: p, sentinel: true, consumed: nl + 2 };
    const length = dataLength(line);
    const next = nl + 2 + (length === null ? 0 : length + 2);
    if (next > buf.length) return null;
    pieces.push(length === null ? { line } : { line, data: buf.subarray(nl + 2, next - 2) });
    p = next;
  }
  return { pieces, end: p, sentinel: false, consumed: p };
}

/** `VALUE <key> <flags> <bytes> [<cas>]` and `VA <bytes> <flags>*` announce a block. */
function dataLength(line: string): number | null {
  let token: string | undefined;
  if (line.startsWith('VALUE ')) token = line.split(' ')[3];
  else if (line.startsWith('VA ')) token = line.split(' ')[1];
  if (token === undefined || !/^\d+$/.test(token)) return null;
  return Number(token);
}

export function frameText(buf: Buffer, sentinel: number): Framed | null {
  const r = textPieces(buf, sentinel);
  return r === null || !r.sentinel ? null : { reply: r.end, consumed: r.consumed };
}

export function frameBinary(buf: Buffer, sentinel: number): Framed | null {
  let p = 0;
  while (p + 24 <= buf.length) {
    const next = p + 24 + buf.readUInt32BE(p + 8);
    if (next > buf.length) return null;
    if (buf[p] === 0x81 && buf[p + 1] === 0x0a && buf.readUInt32BE(p + 12) === sentinel >>> 0) return { reply: p, consumed: next };
    p = next;
  }
  return null;
}
