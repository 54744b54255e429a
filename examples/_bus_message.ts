// The demo bus's message: [producer u32][seq u32][check u32][filler], all
// of it derived from (producer, seq), so any changed byte is caught.

/** Bytes before the filler. */
export const HEADER = 12;

/** A cheap hash of a message's identity and length. */
export function check(producer: number, seq: number, size: number): number {
  return (Math.imul(producer * 0x9e3779b9 + seq, 0x85ebca6b) ^ size) >>> 0;
}

/** Fills `bytes` with the message `seq` of `producer`. */
export function fill(bytes: Uint8Array, producer: number, seq: number): void {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  view.setUint32(0, producer);
  view.setUint32(4, seq);
  view.setUint32(8, check(producer, seq, bytes.length));
  for (let i = HEADER; i < bytes.length; i++) bytes[i] = (seq + i) & 0xff;
}

/** Checks a message; returns its producer and seq, or a description of what is wrong. */
export function verify(bytes: Uint8Array): { producer: number; seq: number } | string {
  if (bytes.length < HEADER) return `a message of ${bytes.length} bytes is shorter than its header`;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const producer = view.getUint32(0);
  const seq = view.getUint32(4);
  if (view.getUint32(8) !== check(producer, seq, bytes.length)) {
    return `producer ${producer} message ${seq}: header checksum mismatch`;
  }
  for (let i = HEADER; i < bytes.length; i++) {
    if (bytes[i] !== ((seq + i) & 0xff)) {
      return `producer ${producer} message ${seq}: byte ${i} changed`;
    }
  }
  return { producer, seq };
}
