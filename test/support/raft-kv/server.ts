/**
 * A replicated key-value server on Baton's Raft: one process per member, one
 * gRPC port for both the Raft transport and the KV API, LevelDB with sync.
 *
 *   node dist/test/support/raft-kv/server.js --id 1 --listen 127.0.0.1:7101 \
 *     --peers 1=127.0.0.1:7101,2=127.0.0.1:7102,3=127.0.0.1:7103 --dir /tmp/kv1 --bootstrap
 */
import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { createLogger, silentLogger } from '../../../src/common/log';
import {
  GetRequest,
  GetResponse,
  KVService,
  PutRequest,
  PutResponse,
  StatusResponse,
  TransferRequest,
  TransferResponse,
} from '../../../src/gen/kv';
import { GrpcTransport, RAFT_SERVER_OPTIONS } from '../../../src/raft/grpc-transport';
import { LevelDbStore } from '../../../src/raft/leveldb-store';
import { RaftNode, RaftNodeOptions } from '../../../src/raft/raft-node';
import { RaftError } from '../../../src/raft/types';
import { encodePut, KvStateMachine } from './state-machine';

export interface KvServerOptions {
  id: number;
  listen: string;
  peers: Record<number, string>;
  dir: string;
  bootstrap: boolean;
  logger?: Logger;
  raft?: Partial<RaftNodeOptions>;
}

export interface KvServer {
  node: RaftNode;
  sm: KvStateMachine;
  port: number;
  stop(): Promise<void>;
}

function toStatus(err: unknown, node: RaftNode): Partial<grpc.StatusObject> {
  if (err instanceof RaftError) {
    const hint = node.leaderAddress() ? ` (leader: ${node.leaderAddress()})` : '';
    switch (err.code) {
      case 'LEADER_CHANGED':
        return { code: grpc.status.ABORTED, details: err.message + hint };
      case 'TIMEOUT':
        return { code: grpc.status.DEADLINE_EXCEEDED, details: err.message };
      case 'NOT_LEADER':
      case 'PROPOSAL_DROPPED':
      case 'STOPPED':
        return { code: grpc.status.UNAVAILABLE, details: err.message + hint };
      default:
        return { code: grpc.status.INTERNAL, details: err.message };
    }
  }
  return { code: grpc.status.INTERNAL, details: String(err) };
}

export async function startKvServer(opts: KvServerOptions): Promise<KvServer> {
  const log = opts.logger ?? silentLogger();
  const sm = new KvStateMachine();
  const store = await LevelDbStore.open(opts.dir, { logger: log });
  // The transport needs its handler before the node exists.
  const ref: { node?: RaftNode } = {};
  const transport = new GrpcTransport({
    selfId: opts.id,
    logger: log,
    handler: {
      receive: (m) => ref.node?.receive(m),
      reportUnreachable: (id) => ref.node?.reportUnreachable(id),
      reportSnapshot: (id, ok) => ref.node?.reportSnapshot(id, ok),
    },
  });
  const n = (ref.node = await RaftNode.start({
    id: opts.id,
    peers: opts.peers,
    store,
    transport,
    stateMachine: sm,
    bootstrap: opts.bootstrap ? Object.keys(opts.peers).map(Number) : undefined,
    logger: log,
    ...opts.raft,
  }));
  const server = new grpc.Server(RAFT_SERVER_OPTIONS);
  transport.register(server);
  server.addService(KVService, {
    put: (
      call: grpc.ServerUnaryCall<PutRequest, PutResponse>,
      cb: grpc.sendUnaryData<PutResponse>,
    ) => {
      if (call.request.key === '')
        return cb({ code: grpc.status.INVALID_ARGUMENT, details: 'key: must not be empty' });
      n.propose(encodePut(call.request.key, call.request.value)).then(
        (r) => cb(null, { index: r.index }),
        (err) => cb(toStatus(err, n)),
      );
    },
    get: (
      call: grpc.ServerUnaryCall<GetRequest, GetResponse>,
      cb: grpc.sendUnaryData<GetResponse>,
    ) => {
      const read = () => {
        const v = sm.data.get(call.request.key);
        cb(null, { found: v !== undefined, value: v ?? Buffer.alloc(0), index: sm.lastIndex });
      };
      if (call.request.stale) return read();
      n.readIndex().then(read, (err) => cb(toStatus(err, n)));
    },
    status: (
      _call: grpc.ServerUnaryCall<unknown, StatusResponse>,
      cb: grpc.sendUnaryData<StatusResponse>,
    ) => {
      const s = n.status();
      cb(null, {
        id: s.id,
        leader: s.leader,
        term: s.term,
        state: s.state,
        commit: s.commit,
        applied: s.applied,
        leaderAddress: n.leaderAddress() ?? '',
      });
    },
    transferLeadership: (
      call: grpc.ServerUnaryCall<TransferRequest, TransferResponse>,
      cb: grpc.sendUnaryData<TransferResponse>,
    ) => {
      n.transferLeadership(call.request.to);
      cb(null, {});
    },
  });
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(opts.listen, grpc.ServerCredentials.createInsecure(), (err, p) =>
      err ? reject(err) : resolve(p),
    ),
  );
  return {
    node: n,
    sm,
    port,
    async stop() {
      await n.stop();
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      server.forceShutdown();
      await transport.close();
      await store.close();
    },
  };
}

export function parsePeers(s: string): Record<number, string> {
  const out: Record<number, string> = {};
  for (const part of s.split(',').filter((p) => p !== '')) {
    const [id, addr] = part.split('=');
    if (!id || !addr || !/^\d+$/.test(id))
      throw new Error(`--peers: expected id=host:port, got "${part}"`);
    out[Number(id)] = addr;
  }
  return out;
}

async function main(): Promise<void> {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : undefined;
  };
  const id = Number(arg('id'));
  const peers = parsePeers(arg('peers') ?? '');
  const log = createLogger({ level: process.env.BATON_LOG_LEVEL ?? 'warn' }).child({ node: id });
  const numArg = (name: string) => (arg(name) !== undefined ? Number(arg(name)) : undefined);
  const srv = await startKvServer({
    id,
    listen: arg('listen') ?? peers[id],
    peers,
    dir: arg('dir') ?? `/tmp/baton-kv-${id}`,
    bootstrap: process.argv.includes('--bootstrap'),
    logger: log,
    raft: {
      tickMs: numArg('tick-ms'),
      electionTicks: numArg('election-ticks'),
      snapshotEntries: numArg('snapshot-entries'),
      keepEntries: numArg('keep-entries'),
    },
  });
  process.stdout.write(`ready ${srv.port}\n`);
  const shutdown = () => {
    // Open peer streams can hold a graceful stop; do not hang on them.
    setTimeout(() => process.exit(0), 1000).unref();
    srv.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
}

if (require.main === module) {
  main().catch((err) => {
    process.stderr.write(`kv server: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  });
}
