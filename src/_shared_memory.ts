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
