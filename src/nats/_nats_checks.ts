// What the NATS side says about bad text: a character named by its code
// point, and the error for a wildcard subject where only a literal one goes.
// Shared by subjects, headers and the publisher, so that they word alike.

/** "whitespace (U+0020)" or "a control character (U+0000)". */
export function describeChar(c: number): string {
  const code = `U+${c.toString(16).toUpperCase().padStart(4, "0")}`;
  const space = c === 0x20 || (c >= 0x09 && c <= 0x0d);
  return space ? `whitespace (${code})` : `a control character (${code})`;
}

/** The error for the wildcard subject `text` used to `use`, e.g. "publish to". */
export function wildcardError(text: string, use: string): TypeError {
  return new TypeError(
    `Cannot ${use} NATS subject ${
      JSON.stringify(text)
    }: it has a wildcard token ("*" or ">"), which only a subscription may have`,
  );
}

/** The index of the first lone surrogate in `text`, or -1: UTF-8 cannot encode one. */
export function loneSurrogate(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0xd800 || c >= 0xe000) continue;
    if (c < 0xdc00 && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) i++;
    else return i;
  }
  return -1;
}
