import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import * as net from 'node:net';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import * as grpc from '@grpc/grpc-js';
import pino from 'pino';
import { RaftTransportClient, SnapshotAck, SnapshotChunk } from '../../src/gen/raft';
import { GrpcTransport, GrpcTransportOptions } from '../../src/raft/grpc-transport';
import { snapshotChecksum } from '../../src/raft/snapshot-checksum';
import type { TransportHandler } from '../../src/raft/transport';
import {
  EMPTY_BYTES,
  EntryType,
  Message,
  MessageType,
  newEntry,
  newMessage,
  RaftError,
} from '../../src/raft/types';

const MiB = 1024 * 1024;

class Recorder implements TransportHandler {
  received: Message[] = [];
  unreachable: number[] = [];
  snapshots: Array<{ id: number; ok: boolean }> = [];
  receive(m: Message): void {
    this.received.push(m);
  }
  reportUnreachable(id: number): void {
    this.unreachable.push(id);
  }
  reportSnapshot(id: number, ok: boolean): void {
    this.snapshots.push({ id, ok });
  }
}

interface TestNode {
  id: number;
  transport: GrpcTransport;
  handler: Recorder;
  server: grpc.Server;
  port: number;
  address: string;
}

const logger = pino({ level: process.env.BATON_LOG_LEVEL ?? 'silent' });

async function startNode(
  id: number,
  opts: Partial<GrpcTransportOptions> = {},
  port = 0,
): Promise<TestNode> {
  const handler = new Recorder();
  const transport = new GrpcTransport({ selfId: id, handler, logger, ...opts });
  const server = new grpc.Server();
  transport.register(server);
  const bound = await bind(server, port);
  return { id, transport, handler, server, port: bound, address: `127.0.0.1:${bound}` };
}

/** Binds, retrying briefly: a port just released by a shut-down server may not be free at once. */
async function bind(server: grpc.Server, port: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<number>((resolve, reject) =>
        server.bindAsync(`127.0.0.1:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) =>
          err ? reject(err) : resolve(p),
        ),
      );
    } catch (err) {
      if (attempt >= 20) throw err;
      await sleep(25);
    }
  }
}

/** n nodes with ids 1..n, each a peer of every other. */
async function startCluster(n: number, opts: Partial<GrpcTransportOptions> = {}) {
  const nodes: TestNode[] = [];
  for (let id = 1; id <= n; id++) nodes.push(await startNode(id, opts));
  connect(nodes);
  return nodes;
}

function connect(nodes: TestNode[]): void {
  for (const a of nodes) {
    for (const b of nodes) if (a !== b) a.transport.addPeer(b.id, b.address);
  }
}

async function stopNodes(nodes: TestNode[]): Promise<void> {
  for (const n of nodes) {
    await n.transport.close();
    n.server.forceShutdown();
  }
}

async function waitFor(what: string, cond: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

const EVERY_TYPE = [
  MessageType.MSG_APP,
  MessageType.MSG_APP_RESP,
  MessageType.MSG_VOTE,
  MessageType.MSG_VOTE_RESP,
  MessageType.MSG_PRE_VOTE,
  MessageType.MSG_PRE_VOTE_RESP,
  MessageType.MSG_HEARTBEAT,
  MessageType.MSG_HEARTBEAT_RESP,
  MessageType.MSG_TIMEOUT_NOW,
  MessageType.MSG_READ_INDEX,
  MessageType.MSG_READ_INDEX_RESP,
  MessageType.MSG_PROP,
  MessageType.MSG_TRANSFER_LEADER,
];

/** The i-th message of a scenario: every type in turn, with entries, context and flags. */
function sample(i: number, from: number, to: number): Message {
  const type = EVERY_TYPE[i % EVERY_TYPE.length];
  const withEntries = type === MessageType.MSG_APP || type === MessageType.MSG_PROP;
  return newMessage({
    type,
    from,
    to,
    term: 3 + i,
    logTerm: 2,
    index: 100 + i,
    commit: 90 + i,
    reject: i % 5 === 0,
    rejectHint: i % 7,
    context: i % 3 === 0 ? Buffer.from(`read-ctx-${i}`) : EMPTY_BYTES,
    entries: withEntries
      ? [
          newEntry({ term: 3, index: 101 + i, data: Buffer.from(`put key${i}=value${i}`) }),
          newEntry({ term: 3, index: 102 + i, type: EntryType.ENTRY_CONF_CHANGE }),
        ]
      : [],
  });
}

function heartbeat(from: number, to: number, commit: number): Message {
  return newMessage({ type: MessageType.MSG_HEARTBEAT, from, to, term: 1, commit });
}

function snapshotMessage(from: number, to: number, data: Buffer, index = 50): Message {
  return newMessage({
    type: MessageType.MSG_SNAP,
    from,
    to,
    term: 4,
    snapshot: {
      data,
      metadata: {
        index,
        term: 3,
        confState: {
          voters: [1, 2, 3],
          learners: [],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      },
    },
  });
}

/** The chunks a well-behaved sender would stream for `m`, from `offset` on. */
function chunksOf(m: Message, chunkBytes: number, offset = 0): SnapshotChunk[] {
  const data = m.snapshot?.data ?? EMPTY_BYTES;
  const header: Message = { ...m, snapshot: { metadata: m.snapshot?.metadata, data: EMPTY_BYTES } };
  const chunks: SnapshotChunk[] = [];
  do {
    const end = Math.min(offset + chunkBytes, data.length);
    const last = end === data.length;
    chunks.push({
      header: chunks.length === 0 ? header : undefined,
      offset,
      totalSize: data.length,
      data: data.subarray(offset, end),
      last,
      checksum: last ? snapshotChecksum(data) : 0,
    });
    offset = end;
  } while (offset < data.length);
  return chunks;
}

function rawClient(n: TestNode): RaftTransportClient {
  return new RaftTransportClient(n.address, grpc.credentials.createInsecure());
}

/** Streams chunks as given (no checks) and returns the answer or the error. */
function installRaw(
  client: RaftTransportClient,
  chunks: SnapshotChunk[],
): Promise<SnapshotAck | grpc.ServiceError> {
  return new Promise((resolve) => {
    const call = client.installSnapshot((err, ack) => resolve(err ?? ack));
    for (const c of chunks) call.write(c);
    call.end();
  });
}

function snapshotOffset(client: RaftTransportClient, m: Message): Promise<number> {
  const req = {
    from: m.from,
    term: m.snapshot?.metadata?.term ?? 0,
    index: m.snapshot?.metadata?.index ?? 0,
  };
  return new Promise((resolve, reject) =>
    client.snapshotOffset(req, (err, ack) => (err ? reject(err) : resolve(ack.received))),
  );
}

function snapshotsReceived(n: TestNode): Message[] {
  return n.handler.received.filter((m) => m.type === MessageType.MSG_SNAP);
}

/**
 * A TCP proxy in front of a node that can cut the connection once after a
 * given number of client-to-server bytes: everything before the cut reaches
 * the server, nothing after.
 */
class CuttingProxy {
  private readonly server = net.createServer((c) => this.relay(c));
  private readonly sockets = new Set<net.Socket>();
  private forwarded = 0;
  private cutAt: number | undefined;
  cuts = 0;

  constructor(private readonly targetPort: number) {}

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const addr = this.server.address() as net.AddressInfo;
    return `127.0.0.1:${addr.port}`;
  }

  cutAfter(bytes: number): void {
    this.cutAt = this.forwarded + bytes;
  }

  close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, '127.0.0.1');
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    upstream.on('data', (d: Buffer) => client.write(d));
    client.on('data', (d: Buffer) => {
      if (this.cutAt !== undefined && this.forwarded + d.length >= this.cutAt) {
        const room = this.cutAt - this.forwarded;
        this.cutAt = undefined;
        this.cuts++;
        this.forwarded += room;
        upstream.end(d.subarray(0, room));
        client.destroy();
        return;
      }
      this.forwarded += d.length;
      upstream.write(d);
    });
  }
}

describe('GrpcTransport', () => {
  let nodes: TestNode[] = [];

  afterEach(async () => {
    await stopNodes(nodes);
    nodes = [];
  });

  describe('message batches', () => {
    beforeEach(async () => {
      nodes = await startCluster(3);
    });

    it('delivers messages of every type intact and in order per peer', async () => {
      const [a, b, c] = nodes;
      const sent = new Map<number, Message[]>([
        [2, []],
        [3, []],
      ]);
      // Three ticks of interleaved traffic, one of them big enough to need
      // several batches.
      for (const [tick, count] of [50, 400, 50].entries()) {
        for (let i = 0; i < count; i++) {
          const to = i % 3 === 0 ? 3 : 2;
          const m = sample(tick * 1000 + i, 1, to);
          if (tick === 1 && i % 10 === 0) m.context = randomBytes(64 * 1024);
          sent.get(to)?.push(m);
          a.transport.send([m]);
        }
        await nextTurn();
      }
      await waitFor('all messages', () => {
        return (
          b.handler.received.length === sent.get(2)?.length &&
          c.handler.received.length === sent.get(3)?.length
        );
      });
      assert.deepEqual(b.handler.received, sent.get(2));
      assert.deepEqual(c.handler.received, sent.get(3));
      assert.ok(a.transport.stats().batchesSent > 4, 'the big tick took several batches');
    });

    it('coalesces the messages of one tick into one batch per peer', async () => {
      const [a, b] = nodes;
      await warmUp(a, b);
      b.handler.received = [];
      const before = { sent: a.transport.stats(), received: b.transport.stats() };
      for (let i = 0; i < 1000; i++) a.transport.send([heartbeat(1, 2, i)]);
      await waitFor('1000 heartbeats', () => b.handler.received.length === 1000);
      assert.equal(a.transport.stats().batchesSent - before.sent.batchesSent, 1);
      assert.equal(b.transport.stats().batchesReceived - before.received.batchesReceived, 1);
      assert.deepEqual(
        b.handler.received.map((m) => m.commit),
        Array.from({ length: 1000 }, (_, i) => i),
      );
    });

    it('splits a tick into batches of at most maxBatchBytes', async () => {
      const [a, b] = nodes;
      await warmUp(a, b);
      b.handler.received = [];
      const before = b.transport.stats().batchesReceived;
      // 40 messages of ~100 KiB: ten fit in 1 MiB, so four batches.
      const msgs = Array.from({ length: 40 }, (_, i) =>
        newMessage({
          type: MessageType.MSG_APP,
          from: 1,
          to: 2,
          index: i,
          entries: [newEntry({ index: i + 1, data: randomBytes(100 * 1024) })],
        }),
      );
      a.transport.send(msgs);
      await waitFor('40 appends', () => b.handler.received.length === 40);
      assert.equal(b.transport.stats().batchesReceived - before, 4);
      assert.deepEqual(b.handler.received, msgs);
    });

    it('drops messages to an unknown peer and still delivers the rest', async () => {
      const [a, b, c] = nodes;
      const dropped = a.transport.stats().messagesDropped;
      a.transport.send([heartbeat(1, 9, 1), heartbeat(1, 2, 2)]);
      await waitFor('the heartbeat to 2', () => b.handler.received.length === 1);
      assert.equal(a.transport.stats().messagesDropped - dropped, 1);
      assert.equal(b.handler.received[0].commit, 2);
      assert.deepEqual(c.handler.received, []);
      assert.deepEqual(a.handler.unreachable, []);
    });

    it('drops messages that are not addressed to the receiving node', async () => {
      const [, b] = nodes;
      const client = rawClient(b);
      try {
        await new Promise<void>((resolve, reject) => {
          const call = client.send((err) => (err ? reject(err) : resolve()));
          call.write({ messages: [heartbeat(1, 3, 1), heartbeat(1, 2, 2), heartbeat(1, 7, 3)] });
          call.end();
        });
      } finally {
        client.close();
      }
      assert.deepEqual(
        b.handler.received.map((m) => m.commit),
        [2],
      );
    });

    it('drops beyond the per-peer window and reports the peer unreachable once', async () => {
      const [, b] = nodes;
      const small = await startNode(4, { maxQueuedMessages: 10 });
      nodes.push(small);
      small.transport.addPeer(2, b.address);
      small.transport.send(Array.from({ length: 25 }, (_, i) => heartbeat(4, 2, i)));
      await waitFor('the first ten', () => b.handler.received.length === 10);
      await sleep(50);
      assert.deepEqual(
        b.handler.received.map((m) => m.commit),
        Array.from({ length: 10 }, (_, i) => i),
      );
      assert.equal(small.transport.stats().messagesDropped, 15);
      assert.deepEqual(small.handler.unreachable, [2], 'rate-limited to one report');
    });

    it('keeps the connection when a peer is re-added at the same address and moves it for a new one', async () => {
      const [a, b, c] = nodes;
      await warmUp(a, b);
      const opened = a.transport.stats().streamsOpened;
      a.transport.addPeer(2, b.address);
      a.transport.send([heartbeat(1, 2, 7)]);
      await waitFor('the heartbeat', () => b.handler.received.length === 2);
      assert.equal(a.transport.stats().streamsOpened, opened);

      // Peer 2 "moved" to c's address: c gets the batch and drops it (not its id).
      const cBatches = c.transport.stats().batchesReceived;
      a.transport.addPeer(2, c.address);
      a.transport.send([heartbeat(1, 2, 8)]);
      await waitFor('c to see the batch', () => c.transport.stats().batchesReceived > cBatches);
      assert.deepEqual(c.handler.received, []);
      assert.equal(b.handler.received.length, 2);
    });

    it('reaches a restarted peer again after reporting it unreachable', async () => {
      const [a, b] = nodes;
      await warmUp(a, b);
      await b.transport.close();
      b.server.forceShutdown();
      await waitFor('unreachable report', () => a.handler.unreachable.includes(2));

      const restarted = await startNode(2, {}, b.port);
      nodes[1] = restarted;
      const start = Date.now();
      let commit = 100;
      await waitFor(
        'a heartbeat at the restarted peer',
        () => {
          a.transport.send([heartbeat(1, 2, commit++)]);
          return restarted.handler.received.length > 0;
        },
        5000,
      );
      assert.ok(Date.now() - start < 2000, `reconnected in ${Date.now() - start} ms`);
    });

    it('rejects its own id and a chunk size over 1 MiB', () => {
      const [a] = nodes;
      assert.throws(
        () => a.transport.addPeer(1, '127.0.0.1:1'),
        (err: unknown) => err instanceof RaftError && err.code === 'INVALID_CONFIG',
      );
      assert.throws(
        () =>
          new GrpcTransport({ selfId: 5, handler: new Recorder(), snapshotChunkBytes: 2 * MiB }),
        (err: unknown) => err instanceof RaftError && err.code === 'INVALID_CONFIG',
      );
    });
  });

  describe('snapshots', () => {
    beforeEach(async () => {
      nodes = await startCluster(2);
    });

    it('streams a 5 MiB snapshot in 1 MiB chunks and delivers it whole', async () => {
      const [a, b] = nodes;
      const data = randomBytes(5 * MiB);
      const m = snapshotMessage(1, 2, data);
      a.transport.send([m]);
      await waitFor('the snapshot report', () => a.handler.snapshots.length === 1);
      assert.deepEqual(a.handler.snapshots, [{ id: 2, ok: true }]);
      const [got] = snapshotsReceived(b);
      assert.ok(got.snapshot?.data.equals(data), 'data arrived intact');
      assert.deepEqual(got.snapshot?.metadata, m.snapshot?.metadata);
      assert.deepEqual({ ...got, snapshot: undefined }, { ...m, snapshot: undefined });
      // The receiver refuses chunks over 1 MiB, so five chunks means five full ones.
      assert.equal(b.transport.stats().snapshotChunksReceived, 5);
      assert.equal(a.transport.stats().snapshotBytesSent, 5 * MiB);
      assert.equal(a.transport.stats().batchesSent, 0, 'snapshots do not ride the batch stream');
    });

    it('delivers an empty snapshot', async () => {
      const [a, b] = nodes;
      a.transport.send([snapshotMessage(1, 2, Buffer.alloc(0))]);
      await waitFor('the snapshot report', () => a.handler.snapshots.length === 1);
      assert.deepEqual(a.handler.snapshots, [{ id: 2, ok: true }]);
      assert.equal(snapshotsReceived(b)[0].snapshot?.data.length, 0);
    });

    it('resumes an interrupted transfer where the receiver left off', async () => {
      const [a, b] = nodes;
      const data = randomBytes(5 * MiB);
      const m = snapshotMessage(1, 2, data);
      // An earlier attempt got two chunks across before its call died.
      const client = rawClient(b);
      try {
        const call = client.installSnapshot(() => undefined);
        call.on('error', () => undefined);
        for (const chunk of chunksOf(m, MiB).slice(0, 2)) call.write(chunk);
        await waitFor('two chunks', () => b.transport.stats().snapshotChunksReceived === 2);
        call.cancel();
        assert.equal(await snapshotOffset(client, m), 2 * MiB);
      } finally {
        client.close();
      }

      a.transport.send([m]);
      await waitFor('the snapshot report', () => a.handler.snapshots.length === 1);
      assert.deepEqual(a.handler.snapshots, [{ id: 2, ok: true }]);
      assert.equal(a.transport.stats().snapshotBytesSent, 3 * MiB, 'only the remainder');
      assert.equal(a.transport.stats().snapshotChunksSent, 3);
      assert.ok(snapshotsReceived(b)[0].snapshot?.data.equals(data));
    });

    it('reports a cut transfer as failed and resumes it when the leader retries', async () => {
      const [a, b] = nodes;
      const proxy = new CuttingProxy(b.port);
      const viaProxy = await proxy.start();
      try {
        a.transport.addPeer(2, viaProxy);
        const data = randomBytes(5 * MiB);
        const m = snapshotMessage(1, 2, data);
        // Cut halfway through the third chunk: the receiver keeps two.
        proxy.cutAfter(2.5 * MiB);
        a.transport.send([m]);
        await waitFor('the failure report', () => a.handler.snapshots.length === 1);
        assert.deepEqual(a.handler.snapshots, [{ id: 2, ok: false }]);
        assert.equal(proxy.cuts, 1);
        assert.deepEqual(snapshotsReceived(b), []);

        // The leader sends the snapshot again each time it hears of a failure.
        const sentBefore = a.transport.stats().snapshotBytesSent;
        let answered = 1;
        a.transport.send([m]);
        await waitFor('a successful retry', () => {
          const reports = a.handler.snapshots;
          if (reports.length === answered) return false;
          answered = reports.length;
          if (reports[reports.length - 1].ok) return true;
          a.transport.send([m]);
          return false;
        });
        assert.ok(snapshotsReceived(b)[0].snapshot?.data.equals(data));
        assert.equal(a.transport.stats().snapshotBytesSent - sentBefore, 3 * MiB);
      } finally {
        await proxy.close();
      }
    });

    it('lets a newer snapshot supersede one still in flight, reporting only the newer', async () => {
      const [a, b] = nodes;
      const older = snapshotMessage(1, 2, randomBytes(3 * MiB), 50);
      const newer = snapshotMessage(1, 2, randomBytes(2 * MiB), 80);
      a.transport.send([older, newer]);
      await waitFor('the snapshot report', () => a.handler.snapshots.length === 1);
      await sleep(50);
      assert.deepEqual(a.handler.snapshots, [{ id: 2, ok: true }]);
      assert.deepEqual(
        snapshotsReceived(b).map((m) => m.snapshot?.metadata?.index),
        [80],
      );
    });

    it('reports a snapshot to an unreachable peer as failed', async () => {
      const [a, b] = nodes;
      await b.transport.close();
      b.server.forceShutdown();
      a.transport.send([snapshotMessage(1, 2, randomBytes(1000))]);
      await waitFor('the failure report', () => a.handler.snapshots.length === 1);
      assert.deepEqual(a.handler.snapshots, [{ id: 2, ok: false }]);
    });

    it('forgets an interrupted transfer after the partial TTL', async () => {
      const b = await startNode(2, { partialSnapshotTtlMs: 50 });
      nodes.push(b);
      const m = snapshotMessage(1, 2, randomBytes(2 * MiB));
      const client = rawClient(b);
      try {
        const res = await installRaw(client, chunksOf(m, MiB).slice(0, 1));
        assert.deepEqual(res, { received: MiB, done: false });
        assert.equal(await snapshotOffset(client, m), MiB);
        await sleep(150);
        assert.equal(await snapshotOffset(client, m), 0);
      } finally {
        client.close();
      }
    });

    const data = randomBytes(2 * MiB);
    const good = snapshotMessage(1, 2, data);
    const rejections: Array<{
      name: string;
      chunks: () => SnapshotChunk[];
      code: grpc.status;
      message: RegExp;
    }> = [
      {
        name: 'a corrupted chunk (checksum mismatch)',
        chunks: () => {
          const chunks = chunksOf(good, MiB);
          const corrupted = Buffer.from(chunks[1].data);
          corrupted[1234] ^= 0xff;
          chunks[1] = { ...chunks[1], data: corrupted };
          return chunks;
        },
        code: grpc.status.DATA_LOSS,
        message: /checksum mismatch/,
      },
      {
        name: 'a wrong checksum on the last chunk',
        chunks: () => {
          const chunks = chunksOf(good, MiB);
          chunks[1] = { ...chunks[1], checksum: (chunks[1].checksum ^ 1) >>> 0 };
          return chunks;
        },
        code: grpc.status.DATA_LOSS,
        message: /checksum mismatch/,
      },
      {
        name: 'a chunk at an unexpected offset',
        chunks: () => chunksOf(good, MiB, MiB).map((c) => ({ ...c, header: c.header ?? good })),
        code: grpc.status.INVALID_ARGUMENT,
        message: /offset 1048576.*0 bytes are held/,
      },
      {
        name: 'a gap between chunks',
        chunks: () => {
          const chunks = chunksOf(good, MiB / 2);
          chunks.splice(1, 1);
          return chunks;
        },
        code: grpc.status.INVALID_ARGUMENT,
        message: /offset 1048576.*524288 bytes are held/,
      },
      {
        name: 'a first chunk without the header',
        chunks: () => chunksOf(good, MiB).map((c) => ({ ...c, header: undefined })),
        code: grpc.status.INVALID_ARGUMENT,
        message: /must carry the MSG_SNAP header/,
      },
      {
        name: 'a chunk over 1 MiB',
        chunks: () => chunksOf(good, 2 * MiB),
        code: grpc.status.INVALID_ARGUMENT,
        message: /exceeds the 1048576-byte limit/,
      },
      {
        name: 'a last chunk before all the bytes',
        chunks: () => chunksOf(good, MiB).map((c) => ({ ...c, last: true })),
        code: grpc.status.INVALID_ARGUMENT,
        message: /after only 1048576 bytes/,
      },
      {
        name: 'a snapshot addressed to another node',
        chunks: () => chunksOf({ ...good, to: 3 }, MiB),
        code: grpc.status.INVALID_ARGUMENT,
        message: /addressed to node 3 reached node 2/,
      },
    ];
    for (const r of rejections) {
      it(`rejects ${r.name}`, async () => {
        const [, b] = nodes;
        const client = rawClient(b);
        try {
          const res = await installRaw(client, r.chunks());
          assert.ok(res instanceof Error, 'the call failed');
          assert.equal(grpc.status[res.code], grpc.status[r.code]);
          assert.match(res.details, r.message);
          assert.deepEqual(snapshotsReceived(b), []);
        } finally {
          client.close();
        }
      });
    }

    it('discards a corrupted transfer so a retry starts from zero', async () => {
      const [a, b] = nodes;
      const client = rawClient(b);
      try {
        const chunks = chunksOf(good, MiB);
        chunks[1] = { ...chunks[1], checksum: 0 };
        const res = await installRaw(client, chunks);
        assert.ok(res instanceof Error && res.code === grpc.status.DATA_LOSS);
        assert.equal(await snapshotOffset(client, good), 0);
      } finally {
        client.close();
      }
      a.transport.send([good]);
      await waitFor('the snapshot report', () => a.handler.snapshots.length === 1);
      assert.deepEqual(a.handler.snapshots, [{ id: 2, ok: true }]);
      assert.equal(a.transport.stats().snapshotBytesSent, 2 * MiB);
    });
  });

  describe('close', () => {
    it('ends inbound streams so the shared server can shut down gracefully', async () => {
      nodes = await startCluster(2);
      const [a, b] = nodes;
      await warmUp(a, b);
      await warmUp(b, a);
      await b.transport.close();
      const shutdown = new Promise<void>((resolve) => b.server.tryShutdown(() => resolve()));
      await withTimeout(shutdown, 2000, 'tryShutdown still waiting on raft streams');
      await a.transport.close();
      a.transport.send([heartbeat(1, 2, 1)]);
      assert.throws(
        () => a.transport.addPeer(3, '127.0.0.1:1'),
        (err: unknown) => err instanceof RaftError && err.code === 'STOPPED',
      );
    });

    it('leaves no timers or sockets behind', async () => {
      // Measured after a turn, once mocha has armed this test's own timeout.
      await nextTurn();
      const baseline = countResources();
      const cluster = await startCluster(3);
      const [a, b, c] = cluster;
      await warmUp(a, b);
      await warmUp(b, c);
      a.transport.send([snapshotMessage(1, 3, randomBytes(2 * MiB))]);
      await stopNodes(cluster);
      await sleep(50);
      assert.deepEqual(countResources(), baseline);
    });
  });
});

describe('snapshotChecksum (CRC-32C)', () => {
  it('matches the standard check value', () => {
    assert.equal(snapshotChecksum(Buffer.from('123456789')), 0xe3069283);
    assert.equal(snapshotChecksum(Buffer.alloc(0)), 0);
    assert.equal(snapshotChecksum(Buffer.alloc(32)), 0x8a9136aa);
  });

  it('can be computed chunk by chunk', () => {
    const data = randomBytes(100_003);
    const whole = snapshotChecksum(data);
    for (const cut of [0, 1, 7, 8, 4096, 99_999, 100_003]) {
      assert.equal(
        snapshotChecksum(data.subarray(cut), snapshotChecksum(data.subarray(0, cut))),
        whole,
      );
    }
  });
});

async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  try {
    return await Promise.race([p, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** Opens a's stream to b by getting one message across. */
async function warmUp(a: TestNode, b: TestNode): Promise<void> {
  const n = b.handler.received.length;
  a.transport.send([heartbeat(a.id, b.id, 0)]);
  await waitFor('warm-up heartbeat', () => b.handler.received.length === n + 1);
}

/** Resources keeping the event loop alive, by kind. */
function countResources(): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const r of process.getActiveResourcesInfo()) counts[r] = (counts[r] ?? 0) + 1;
  return counts;
}
