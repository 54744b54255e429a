// Which codecs are the library's own fixed-size length prefixes, so that a
// writer can frame with them inline (one DataView store) instead of calling
// the codec twice per message, and a frame cutter can read them inline (one
// DataView load) instead of calling the codec's decode once per frame. Kept
// out of the codec's public shape: the registry is the only way to learn
// it, and only for codecs made by `lengthPrefix()`, whose header is known to
// depend on the length alone.

/** A length prefix's size in bytes (1, 2 or 4), plus LITTLE_ENDIAN when it is. */
export type PrefixLayout = number;

/** Set in a PrefixLayout when the prefix is little-endian. */
export const LITTLE_ENDIAN = 8;

const layouts = new WeakMap<object, PrefixLayout>();

/** Records that `codec` frames with a `size`-byte length prefix and no trailer. */
export function registerLengthPrefix(codec: object, size: 1 | 2 | 4, littleEndian: boolean): void {
  layouts.set(codec, size | (littleEndian ? LITTLE_ENDIAN : 0));
}

/** The layout of a codec made by `lengthPrefix()`, or 0 for any other codec. */
export function lengthPrefixLayout(codec: object): PrefixLayout {
  return layouts.get(codec) ?? 0;
}

/**
 * Where the payload of the length-prefixed frame at `start` ends, if the
 * frame is whole before `end` and its length within `max`; else -1, and the
 * codec's decode says why. `prefix` is the layout's size, `little` its byte
 * order: the read side of what a writer writes inline.
 */
export function prefixedFrameEnd(
  data: DataView,
  start: number,
  end: number,
  prefix: number,
  little: boolean,
  max: number,
): number {
  if (end - start < prefix) return -1;
  const n = prefix === 4
    ? data.getUint32(start, little)
    : prefix === 2
    ? data.getUint16(start, little)
    : data.getUint8(start);
  const payloadEnd = start + prefix + n;
  return n > max || payloadEnd > end ? -1 : payloadEnd;
}
