// Test helper: memcached's 8-byte UDP frame header, built independently of lib/udp/frame.ts.

/** request id, sequence number, total datagrams, reserved: big-endian u16 each. */
export function udpHeader(id: number, seq = 0, total = 1, reserved = 0): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt16BE(id, 0);
  b.writeUInt16BE(seq, 2);
  b.writeUInt16BE(total, 4);
  b.writeUInt16BE(reserved, 6);
  return b;
}
