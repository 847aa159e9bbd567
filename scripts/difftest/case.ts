/**
 * One generated request, as parts that are rendered separately for each server: the CAS values
 * each server handed out differ, so a request names them by recency (`{ cas: j }`), and absolute
 * expiry times are taken from the clock when the request is sent (`{ unixIn: seconds }`).
 */
export type Part = string | Buffer | { cas: number } | { unixIn: number };

export interface RenderContext {
  /** The j-th most recent CAS value this server returned (0 when it returned fewer). */
  recentCas(j: number): bigint;
  /** Unix time in seconds, the same for both servers. */
  unixNow: number;
}

export interface Case {
  /** The protocol the request speaks: the runner frames requests and replies accordingly. */
  protocol: 'text' | 'binary';
  /** The request's bytes for one server. */
  render(ctx: RenderContext): Buffer;
  /**
   * The request carries a data block that memcached 1.6 runs as commands when it refuses the
   * line: the block is made so that it only ever answers `ERROR` lines (see known-differences).
   */
  harmlessBlock?: boolean;
}

/** A string part is sent byte for byte (latin1). */
export function bytesOf(part: string | Buffer): Buffer {
  return typeof part === 'string' ? Buffer.from(part, 'latin1') : part;
}

/** A text-protocol request made of parts. */
export function textCase(parts: Part[], harmlessBlock = false): Case {
  return { protocol: 'text', render: (ctx) => renderParts(parts, ctx), harmlessBlock };
}

export function renderParts(parts: Part[], ctx: RenderContext): Buffer {
  return Buffer.concat(
    parts.map((p) => {
      if (typeof p === 'string' || Buffer.isBuffer(p)) return bytesOf(p);
      if ('cas' in p) return Buffer.from(String(ctx.recentCas(p.cas)), 'latin1');
      return Buffer.from(String(ctx.unixNow + p.unixIn), 'latin1');
    }),
  );
}

/** A request for a report: printable, control bytes escaped, long runs shortened. */
export function describe(bytes: Buffer, max = 300): string {
  const text = JSON.stringify(bytes.toString('latin1', 0, Math.min(bytes.length, max)));
  return bytes.length > max ? `${text}... (${bytes.length} bytes)` : text;
}
