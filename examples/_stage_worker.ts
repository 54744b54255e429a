// A stage of examples/workers.ts. "transform" receives batches, rewrites each
// record in place (adds one to its second field) and forwards the batch;
// "check" verifies every record, in order, and releases it.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import { BufferPool, type BufferPoolHandle, type SendBatch } from "../mod.ts";

export interface StageSetup {
  role: "transform" | "check";
  pool: BufferPoolHandle;
  /** transform: where to forward; check: where batches come from. */
  next: MessagePort;
  expected: number;
}

export interface StageReport {
  records: number;
  error?: string;
}

self.onmessage = (event: MessageEvent<StageSetup>) => {
  const setup = event.data;
  const upstream = event.ports[0]!;
  const pool = BufferPool.attach(setup.pool);
  let records = 0;
  const finish = (error?: string) => {
    pool.detach();
    self.postMessage({ records, ...(error === undefined ? {} : { error }) } satisfies StageReport);
  };
  const input = setup.role === "transform" ? upstream : setup.next;
  input.onmessage = (message: MessageEvent<SendBatch | null>) => {
    if (message.data === null) {
      if (setup.role === "transform") setup.next.postMessage(null);
      finish();
      return;
    }
    const packets = pool.receiveBatch(message.data);
    for (const packet of packets) {
      const view = new DataView(packet.bytes.buffer, packet.bytes.byteOffset, packet.length);
      if (setup.role === "transform") {
        view.setUint32(4, view.getUint32(4) + 1);
      } else {
        const seq = view.getUint32(0);
        if (seq !== records || view.getUint32(4) !== seq * 3 + 1) {
          finish(`record ${records}: got seq ${seq}, value ${view.getUint32(4)}`);
          return;
        }
        packet.release();
      }
      records++;
    }
    if (setup.role === "transform") setup.next.postMessage(pool.sendBatch(packets));
  };
};
