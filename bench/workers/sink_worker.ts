/// <reference no-default-lib="true" />
/// <reference lib="deno.worker" />
// Receives messages for bench/shared_pool_bench.ts and acks each batch.
// Two kinds: copied Uint8Arrays, one postMessage each (the baseline), and
// SendPackets or SendBatches on a shared pool, which it receives and releases.
import { BufferPool, type SendBatch, type SendPacket } from "../../mod.ts";

type Message =
  | { kind: "attach"; handle: { block: SharedArrayBuffer } }
  | { kind: "bytes"; bytes: Uint8Array; last: boolean }
  | { kind: "packets"; packets: SendPacket[]; last: boolean }
  | { kind: "batch"; batch: SendBatch; last: boolean };

let pool: BufferPool | undefined;
let sum = 0;

self.onmessage = (event: MessageEvent<Message>) => {
  const message = event.data;
  switch (message.kind) {
    case "attach":
      pool = BufferPool.attach(message.handle);
      self.postMessage("attached");
      return;
    case "bytes":
      sum += message.bytes[0]!;
      break;
    case "packets":
      for (const sent of message.packets) {
        const packet = pool!.receive(sent);
        sum += packet.bytes[0]!;
        packet.release();
      }
      break;
    case "batch":
      for (const packet of pool!.receiveBatch(message.batch)) {
        sum += packet.bytes[0]!;
        packet.release();
      }
      break;
  }
  if (message.last) self.postMessage(sum);
};
