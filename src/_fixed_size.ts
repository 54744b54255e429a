// Which codecs were made by `fixedSize()`. Such a codec frames one payload
// length only and refuses any other, so `largestPayload` must not probe its
// header with a shorter one. Kept out of the codec's public shape, as the
// length prefixes' layouts are (_length_prefix.ts).

const fixedSizes = new WeakSet<object>();

/** Records that `codec` frames payloads of exactly its `maxPayload` bytes, no more, no fewer. */
export function registerFixedSize(codec: object): void {
  fixedSizes.add(codec);
}

/** Whether `codec` was made by `fixedSize()`. */
export function isFixedSize(codec: object): boolean {
  return fixedSizes.has(codec);
}
