// The library's own view of one pooled buffer in this worker: its memory and
// this worker's references. Transitional: the handle class still plays both
// parts until the record is split out of it (issue 11, defect 7).

export type { PooledBuffer as BufferRecord } from "./pooled_buffer.ts";
