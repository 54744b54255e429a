// The auditor of the demo bus: receives batches of packets forwarded from
// the server with sendBatch, checks each one's bytes where the server left
// them, and releases them.
/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
import { BufferPool, type BufferPoolHandle, type SendBatch } from "../mod.ts";
import { verify } from "./_bus_message.ts";

export type AuditorReport = { audited: number } | { error: string };

self.onmessage = ({ data: handle, ports: [port] }: MessageEvent<BufferPoolHandle>) => {
  const pool = BufferPool.attach(handle);
  let audited = 0;
  let failure: string | undefined;
  port!.onmessage = ({ data: batch }: MessageEvent<SendBatch | null>) => {
    if (batch === null) {
      pool.detach();
      self.postMessage(
        (failure === undefined ? { audited } : { error: failure }) satisfies AuditorReport,
      );
      return;
    }
    for (const packet of pool.receiveBatch(batch)) {
      const result = verify(packet.bytes);
      if (typeof result === "string") failure ??= result;
      audited++;
      packet.release();
    }
  };
};
