// The numbered messages of the NATS bus tests: a publisher's number, a
// sequence number, and a pattern that depends on both, in sizes from 8 bytes
// to 3,000 (digit boundaries of the length included), so that a message cut,
// shifted or mixed with another fails its check.

const SIZES = [8, 9, 10, 99, 100, 1000, 3000, 32];

/** Message `seq` of publisher `publisher`. */
export function busMessage(publisher: number, seq: number): Uint8Array {
  const bytes = new Uint8Array(SIZES[seq % SIZES.length]!);
  const view = new DataView(bytes.buffer);
  view.setUint16(0, publisher);
  view.setUint32(2, seq);
  for (let k = 6; k < bytes.length; k++) bytes[k] = (publisher * 31 + seq + k) & 0xff;
  return bytes;
}

/**
 * Reads a message's publisher and sequence number, checking every byte.
 *
 * @throws {Error} If the message is not exactly what busMessage made.
 */
export function readBusMessage(bytes: Uint8Array): { publisher: number; seq: number } {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const publisher = view.getUint16(0);
  const seq = view.getUint32(2);
  const expected = busMessage(publisher, seq);
  if (bytes.length !== expected.length || bytes.some((byte, k) => byte !== expected[k])) {
    throw new Error(`message ${seq} of publisher ${publisher} changed on the way`);
  }
  return { publisher, seq };
}
