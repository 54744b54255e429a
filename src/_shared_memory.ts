// Whether this runtime has SharedArrayBuffer. Browsers give it only to
// cross-origin isolated pages; elsewhere the global is missing and naming it
// throws a ReferenceError, so every check goes through `typeof` first.

import { SharedMemoryUnavailableError } from "./errors.ts";

/** Whether `SharedArrayBuffer` exists here, so that a pool may be shared. */
export function sharedMemoryAvailable(): boolean {
  return typeof SharedArrayBuffer === "function";
}

/** Whether `value` is a `SharedArrayBuffer`; false wherever none can exist. */
export function isSharedArrayBuffer(value: unknown): value is SharedArrayBuffer {
  return typeof SharedArrayBuffer === "function" && value instanceof SharedArrayBuffer;
}

/**
 * The error for an attempt to share memory where there is none: `action` is
 * what was attempted, e.g. "create a shared buffer pool".
 */
export function sharedMemoryUnavailable(action: string): SharedMemoryUnavailableError {
  return new SharedMemoryUnavailableError(
    `Cannot ${action}: SharedArrayBuffer is not available in this runtime. Browsers provide it only to cross-origin isolated pages: serve the page with the headers "Cross-Origin-Opener-Policy: same-origin" and "Cross-Origin-Embedder-Policy: require-corp" (self.crossOriginIsolated is then true), or create the pool without shared: true`,
  );
}

const encoder = new TextEncoder();

/**
 * Whether `TextEncoder.encodeInto` takes a view of shared memory: Deno, Node
 * and Bun do, Chromium throws a TypeError ("must not be shared").
 */
const encodesIntoShared = (() => {
  if (!sharedMemoryAvailable()) return true;
  try {
    encoder.encodeInto("", new Uint8Array(new SharedArrayBuffer(1)));
    return true;
  } catch {
    return false;
  }
})();

/**
 * `TextEncoder.encodeInto` that works on a view of shared memory everywhere:
 * where the runtime refuses one, it encodes into a scratch array and copies.
 */
export function encodeInto(text: string, view: Uint8Array): TextEncoderEncodeIntoResult {
  if (encodesIntoShared || !isSharedArrayBuffer(view.buffer)) return encoder.encodeInto(text, view);
  const scratch = new Uint8Array(view.length);
  const result = encoder.encodeInto(text, scratch);
  view.set(scratch.subarray(0, result.written));
  return result;
}
