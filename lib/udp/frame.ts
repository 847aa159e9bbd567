/**
 * memcached's UDP framing, as memcached 1.6.18 does it (memcached.c try_read_udp,
 * build_udp_header, transmit_udp, _transmit_post; memcached.h UDP_* constants). Pure: no sockets.
 *
 * Every datagram starts with an 8-byte header of big-endian u16s: request id, sequence number,
 * total datagrams in the message, reserved (0). A request is one datagram. A reply is framed per
 * memcached response object (one per command, one per key of a text multi-get with END on the
 * last): each is its own message, numbered from 0, split into pieces of at most 1392 bytes
 * (UDP_MAX_PAYLOAD_SIZE 1400 with the header), total = ceil(bytes / 1392).
 */

export const UDP_HEADER_SIZE = 8;
export const UDP_MAX_PAYLOAD_SIZE = 1400;
export const UDP_DATA_SIZE = UDP_MAX_PAYLOAD_SIZE - UDP_HEADER_SIZE;
const U16_MAX = 0xffff;

export interface FrameHeader {
  requestId: number;
  sequence: number;
  total: number;
  reserved: number;
}

/** The header of a datagram, or null when it is shorter than one. */
export function parseHeader(datagram: Uint8Array): FrameHeader | null {
  if (datagram.length < UDP_HEADER_SIZE) return null;
  const u16 = (at: number) => (datagram[at]! << 8) | datagram[at + 1]!;
  return { requestId: u16(0), sequence: u16(2), total: u16(4), reserved: u16(6) };
}

/**
 * What memcached makes of a request datagram: one of 8 bytes or less is dropped unseen (not even
 * counted in bytes_read); one that says it is not the only datagram of its request (total != 1)
 * is dropped after bytes_read counts it; otherwise the payload after the header is the request.
 * The sequence number and the reserved field are not looked at.
 */
export type UdpRequest =
  | { kind: 'request'; requestId: number; payload: Buffer }
  | { kind: 'short' }
  | { kind: 'multi-datagram'; requestId: number };

export function parseRequest(datagram: Buffer): UdpRequest {
  const header = datagram.length > UDP_HEADER_SIZE ? parseHeader(datagram) : null;
  if (header === null) return { kind: 'short' };
  if (header.total !== 1) return { kind: 'multi-datagram', requestId: header.requestId };
  return { kind: 'request', requestId: header.requestId, payload: datagram.subarray(UDP_HEADER_SIZE) };
}

/** An 8-byte frame header (fields taken modulo 2^16, as memcached writes them byte by byte). */
export function frameHeader(requestId: number, sequence: number, total: number): Buffer {
  const b = Buffer.alloc(UDP_HEADER_SIZE);
  b.writeUInt16BE(requestId & U16_MAX, 0);
  b.writeUInt16BE(sequence & U16_MAX, 2);
  b.writeUInt16BE(total & U16_MAX, 4);
  return b;
}

/**
 * The datagrams of one non-empty response: 1392-byte pieces, sequence 0, 1, ..., each with the
 * total (memcached caps the total at 65535 and lets the sequence wrap).
 */
export function frameResponse(requestId: number, reply: Uint8Array): Buffer[] {
  const count = Math.ceil(reply.length / UDP_DATA_SIZE);
  const total = Math.min(count, U16_MAX);
  const out: Buffer[] = [];
  for (let seq = 0; seq < count; seq++) {
    const piece = reply.subarray(seq * UDP_DATA_SIZE, Math.min(reply.length, (seq + 1) * UDP_DATA_SIZE));
    const d = Buffer.allocUnsafe(UDP_HEADER_SIZE + piece.length);
    d.writeUInt16BE(requestId & U16_MAX, 0);
    d.writeUInt16BE(seq & U16_MAX, 2);
    d.writeUInt16BE(total, 4);
    d.writeUInt16BE(0, 6);
    d.set(piece, UDP_HEADER_SIZE);
    out.push(d);
  }
  return out;
}

/** One memcached response object of a request, in request order. */
export interface Response {
  /** Its bytes; may be empty. */
  bytes: Uint8Array;
  /**
   * Nothing to send, ever: a text command's noreply (memcached's resp->skip). An empty response
   * that is not skipped (a text multi-get's key that missed, before the last; a binary quiet
   * command with nothing to say) still takes part in the framing below.
   */
  skip: boolean;
  /** memcached writes its queued responses out after this one (see flushesAfter...). */
  flush: boolean;
}

/**
 * Frames the responses of one request in order, as memcached's transmit_udp sends them: each
 * non-empty response as its own message. memcached sends the responses queued until a flush
 * point one datagram per call; after a response is completely sent, the empty and skipped ones
 * right behind it complete with it, sending nothing. An empty response at the head of the queue
 * (nothing sent since the last flush point) goes out as a lone header (sequence 0, total 0), and
 * the empty ones right behind it complete with that.
 */
export class ReplyFramer {
  /** A datagram went out since the last flush point: empty responses complete silently. */
  private sentSinceFlush = false;

  constructor(readonly requestId: number) {}

  /** The datagrams for the next response. */
  push(r: Response): Buffer[] {
    let out: Buffer[] = [];
    if (r.skip) {
      // nothing
    } else if (r.bytes.length > 0) {
      out = frameResponse(this.requestId, r.bytes);
      this.sentSinceFlush = true;
    } else if (!this.sentSinceFlush) {
      out = [frameHeader(this.requestId, 0, 0)];
      this.sentSinceFlush = true;
    }
    if (r.flush) this.flush();
    return out;
  }

  /** A flush point (memcached's conn_mwrite): the queue starts over. */
  flush(): void {
    this.sentSinceFlush = false;
  }
}

/** All datagrams of a request's responses (ReplyFramer over a list). */
export function frameReply(requestId: number, responses: Response[]): Buffer[] {
  const framer = new ReplyFramer(requestId);
  return responses.flatMap((r) => framer.push(r));
}

/**
 * memcached's -R (reqs_per_event) also flushes: a worker runs R + 1 commands of a datagram, writes
 * the replies out and yields, then R more per turn. True when there is such a flush after any of
 * the commands from..to-1 (1-based, in the datagram's order).
 */
export function yieldFlushBetween(from: number, to: number, reqsPerEvent: number): boolean {
  const first = reqsPerEvent + 1;
  const k = from <= first ? first : from + ((reqsPerEvent - ((from - first) % reqsPerEvent)) % reqsPerEvent);
  return k < to;
}

const BIN_RESPONSE_MAGIC = 0x81;
const BIN_NOOP = 0x0a;
const BIN_STATUS_KEY_ENOENT = 0x01;
const BIN_STATUS_E2BIG = 0x03;
/** GetK, GetKQ, GatK, GatKQ: a miss is a normal response with the key, not write_bin_error. */
const KEYED_GETS = new Set([0x0c, 0x0d, 0x23, 0x24]);

/**
 * Whether memcached flushes after the binary response `reply` (proto_bin.c): after a noop and
 * after write_bin_error, except an error that swallows a value (E2BIG); a keyed get's miss is not
 * an error write. An empty reply (a quiet command) does not flush.
 */
export function binaryFlushesAfter(reply: Uint8Array): boolean {
  if (reply.length < 24 || reply[0] !== BIN_RESPONSE_MAGIC) return false;
  const opcode = reply[1]!;
  const status = (reply[6]! << 8) | reply[7]!;
  if (opcode === BIN_NOOP) return true;
  if (status === 0 || status === BIN_STATUS_E2BIG) return false;
  return !(status === BIN_STATUS_KEY_ENOENT && KEYED_GETS.has(opcode));
}
