// Packets posted between the workers of a shared pool: a SendPacket or a
// SendBatch is made from live packets and received once, in any worker.
//
// Sending moves the packets' references out of this worker's records into
// the shared counts (BufferRecord.moveOut), then publishes a send ticket
// (_send_tickets.ts) whose stamp travels with the plain data. Receiving
// checks the regions, takes the ticket back (exactly one receive succeeds),
// and takes the references into this worker's records (takeIn). A batch
// moves the references of each run of packets on one buffer at once.

import type { PoolLink } from "./_buffer_link.ts";
import type { BufferRecord, WorkerRecords } from "./_buffer_record.ts";
import { R_INDEX, R_LENGTH, R_OFFSET, SEND_RECORD_WORDS, sendRecordWord } from "./_layout.ts";
import { type SendTickets, takeTicket } from "./_send_tickets.ts";
import { detachedError } from "./_worker_cache.ts";
import { ReleasedError } from "./errors.ts";
import { Packet } from "./packet.ts";
import type { SendBatch, SendPacket } from "./send_packet.ts";

/** One pool object's sending and receiving of packets. */
export class PacketPost {
  /** The pool object, which the packets sent through it must belong to. */
  readonly #pool: PoolLink;
  readonly #records: WorkerRecords;
  /** Null in a pool of one worker, which cannot send. */
  readonly #tickets: SendTickets | null;
  readonly #poolId: number;
  /** Bumped per batch sent, to find a packet listed twice. */
  #mark = 0;

  constructor(
    pool: PoolLink,
    records: WorkerRecords,
    tickets: SendTickets | null,
    poolId: number,
  ) {
    this.#pool = pool;
    this.#records = records;
    this.#tickets = tickets;
    this.#poolId = poolId;
  }

  /** A SendPacket of bytes `[offset, offset + length)` of `record`, moving one reference into it. */
  send(record: BufferRecord, offset: number, length: number): SendPacket {
    const tickets = this.#sendTickets();
    const ticket = tickets.claim();
    record.moveOut(1);
    const stamp = tickets.publish(ticket);
    return { pool: this.#poolId, index: record.index, offset, length, ticket, stamp };
  }

  /** A SendBatch of `packets`, which count as released afterwards; nothing changes on an error. */
  sendBatch(packets: readonly Packet[]): SendBatch {
    const tickets = this.#sendTickets();
    // Check everything before changing anything, duplicates included.
    const mark = ++this.#mark;
    for (const packet of packets) {
      if (packet._buffer().pool !== this.#pool) {
        throw new TypeError("Cannot send packets: one belongs to another pool object");
      }
      if (packet._mark === mark) {
        throw new TypeError("Cannot send packets: the same packet is in the batch twice");
      }
      packet._mark = mark;
    }
    const ticket = tickets.claim();
    const regions = new Int32Array(packets.length * SEND_RECORD_WORDS);
    let run: BufferRecord | undefined = undefined;
    let runLength = 0;
    for (let i = 0; i < packets.length; i++) {
      const packet = packets[i]!;
      // The first loop checked that each packet's buffer is one of this pool
      // object's records; a lookup by index cost a tenth of the send.
      const record = packet._buffer() as BufferRecord;
      const at = sendRecordWord(i);
      regions[at + R_INDEX] = record.index;
      regions[at + R_OFFSET] = packet._offset();
      regions[at + R_LENGTH] = packet.length;
      packet._forget();
      if (record !== run) {
        if (run !== undefined) run.moveOut(runLength);
        run = record;
        runLength = 0;
      }
      runLength++;
    }
    if (run !== undefined) run.moveOut(runLength);
    const stamp = tickets.publish(ticket);
    return { pool: this.#poolId, ticket, stamp, regions };
  }

  /** The packet a SendPacket carries, holding its own reference. */
  receive(sent: SendPacket): Packet {
    const { index, offset, length } = sent;
    this.#checkRegion(index, offset, length);
    this.#takeTicket(sent, index);
    const record = this.#records.get(index);
    record.takeIn(1);
    return new Packet(record, offset, length);
  }

  /** The packets a SendBatch carries, in order, each holding its own reference. */
  receiveBatch(batch: SendBatch): Packet[] {
    const { regions } = batch;
    const count = regions.length / SEND_RECORD_WORDS;
    if (!(regions instanceof Int32Array) || !Number.isInteger(count)) {
      throw new TypeError("Cannot receive batch: its regions are not triples in an Int32Array");
    }
    for (let at = 0; at < regions.length; at += SEND_RECORD_WORDS) {
      this.#checkRegion(regions[at + R_INDEX]!, regions[at + R_OFFSET]!, regions[at + R_LENGTH]!);
    }
    this.#takeTicket(batch, -1);
    const packets: Packet[] = new Array(count);
    let run: BufferRecord | undefined = undefined;
    let runLength = 0;
    for (let i = 0; i < count; i++) {
      const at = sendRecordWord(i);
      const record = this.#records.get(regions[at + R_INDEX]!);
      if (record !== run) {
        if (run !== undefined) run.takeIn(runLength);
        run = record;
        runLength = 0;
      }
      runLength++;
      packets[i] = new Packet(record, regions[at + R_OFFSET]!, regions[at + R_LENGTH]!);
    }
    if (run !== undefined) run.takeIn(runLength);
    return packets;
  }

  #sendTickets(): SendTickets {
    if (this.#tickets === null) {
      throw new TypeError(
        "Cannot send packet: its pool was created without shared: true, so no other worker can see it",
      );
    }
    return this.#tickets;
  }

  /** Checks that a sent region lies within this pool. */
  #checkRegion(index: number, offset: number, length: number): void {
    const { bufferCount, bufferSize } = this.#records.layout;
    if (
      index >>> 0 !== index || index >= bufferCount || offset >>> 0 !== offset ||
      length >>> 0 !== length || offset + length > bufferSize
    ) {
      throw new TypeError(
        `Cannot receive packet: buffer ${index} at [${offset}, ${
          offset + length
        }) is outside this pool of ${bufferCount} buffers of ${bufferSize} bytes`,
      );
    }
  }

  /**
   * Takes a send's ticket back: exactly one receive anywhere succeeds.
   * `index` names the packet's buffer for messages; -1 for a batch.
   */
  #takeTicket(sent: { pool: number; ticket: number; stamp: number }, index: number): void {
    const records = this.#records;
    const { shared } = records;
    if (!records.attached) throw detachedError("receive", shared);
    const what = index < 0 ? "batch" : `packet of buffer ${index}`;
    if (!shared || sent.pool !== this.#poolId) {
      throw new TypeError(
        `Cannot receive ${what}: it was sent from pool ${sent.pool}, and this is ${
          shared ? `pool ${this.#poolId}` : "a pool that is not shared"
        }`,
      );
    }
    if (!takeTicket(records.words, records.layout, sent.ticket, sent.stamp)) {
      throw new ReleasedError(`Cannot receive ${what}: it was already received`);
    }
  }
}
