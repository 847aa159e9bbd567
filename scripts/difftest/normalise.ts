/**
 * What may differ between two correct servers, taken out of their replies: CAS values (each
 * server's are renamed #1, #2... in order of first appearance) and numbers that depend on the
 * clock (remaining TTL, idle time), which are compared within a tolerance.
 */
import { textPieces } from './framing.js';

/** Seconds two clocks (memcached's and memshard's, ticking separately) may disagree by. */
const CLOCK_TOLERANCE = 2;

/** One server's CAS values: their order of appearance, and the most recently seen first. */
export class CasNames {
  private readonly names = new Map<bigint, number>();
  private recent: bigint[] = [];

  name(cas: bigint): string {
    if (cas === 0n) return '0';
    let n = this.names.get(cas);
    if (n === undefined) {
      n = this.names.size + 1;
      this.names.set(cas, n);
    }
    this.recent = [cas, ...this.recent.filter((c) => c !== cas)].slice(0, 8);
    return `#${n}`;
  }

  /** The j-th most recent CAS value seen (0 when fewer were seen). */
  recentCas(j: number): bigint {
    return this.recent[j] ?? 0n;
  }
}

/** A reply with its CAS values renamed and its clock-dependent numbers taken out. */
export interface Normalised {
  text: string;
  clock: number[];
}

const CAS_FLAG = /^c(\d+)$/;
const CLOCK_FLAG = /^([tl])(-?\d+)$/;
const ME_FIELD = /^(exp|la|cas)=(-?\d+)$/;

/** A text/meta reply (as framed: whole lines and blocks). */
export function normaliseText(reply: Buffer, cas: CasNames): Normalised {
  const parsed = textPieces(reply, null);
  if (parsed === null) return { text: `<unframed> ${JSON.stringify(reply.toString('latin1'))}`, clock: [] };
  const clock: number[] = [];
  const out: string[] = [];
  for (const piece of parsed.pieces) {
    const tokens = piece.line.split(' ');
    const meta = /^(VA|HD|EN|NF|NS|EX|ME)$/.test(tokens[0]!);
    for (let i = 1; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (tokens[0] === 'VALUE' && i === 4 && /^\d+$/.test(t)) tokens[i] = cas.name(BigInt(t));
      if (!meta) continue;
      let m = CAS_FLAG.exec(t);
      if (m !== null) {
        tokens[i] = `c${cas.name(BigInt(m[1]!))}`;
        continue;
      }
      m = tokens[0] === 'ME' ? ME_FIELD.exec(t) : CLOCK_FLAG.exec(t);
      if (m === null) continue;
      if (m[1] === 'cas') {
        tokens[i] = `cas=${cas.name(BigInt(m[2]!))}`;
      } else if (m[1] === 't' && Number(m[2]) >= 2 ** 31) {
        // a TTL already past, wrapped as unsigned: it counts from the server's start
        tokens[i] = 't<past>';
      } else if (m[2] !== '-1') {
        clock.push(Number(m[2]));
        tokens[i] = tokens[0] === 'ME' ? `${m[1]}=~` : `${m[1]}~`;
      }
    }
    out.push(tokens.join(' '));
    if (piece.data !== undefined) out.push(piece.data.toString('latin1'));
  }
  return { text: out.map((l) => `${l}\r\n`).join(''), clock };
}

/** Binary responses: each packet in hex, with its header's CAS renamed. */
export function normaliseBinary(reply: Buffer, cas: CasNames): Normalised {
  const out: string[] = [];
  let p = 0;
  while (p + 24 <= reply.length) {
    const end = Math.min(reply.length, p + 24 + reply.readUInt32BE(p + 8));
    const head = reply.subarray(p, p + 16).toString('hex');
    out.push(`${head} cas=${cas.name(reply.readBigUInt64BE(p + 16))} ${reply.subarray(p + 24, end).toString('hex')}`);
    p = end;
  }
  if (p < reply.length) out.push(`<partial> ${reply.subarray(p).toString('hex')}`);
  return { text: out.join('\n'), clock: [] };
}

export function sameReply(a: Normalised, b: Normalised): boolean {
  return (
    a.text === b.text &&
    a.clock.length === b.clock.length &&
    a.clock.every((x, i) => Math.abs(x - b.clock[i]!) <= CLOCK_TOLERANCE || Math.abs(x - b.clock[i]!) >= 2 ** 32 - CLOCK_TOLERANCE)
  );
}
