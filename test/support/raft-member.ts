/**
 * One Raft member in this process, for the Raft tests: real LevelDB and the
 * real gRPC transport on loopback, with the key-value state machine.
 */
import * as grpc from '@grpc/grpc-js';
import { DurableStore } from '../../src/raft/durable-store';
import { GrpcTransport, RAFT_SERVER_OPTIONS } from '../../src/raft/grpc-transport';
import { LevelDbStore } from '../../src/raft/leveldb-store';
import { RaftNode, RaftNodeOptions } from '../../src/raft/raft-node';
import { KvStateMachine } from './raft-kv/state-machine';

export interface RaftMember {
  id: number;
  node: RaftNode;
  sm: KvStateMachine;
  store: DurableStore;
  /** Stops it in order: the node, then its server, transport and store. */
  stop(): Promise<void>;
  /** Like kill -9: its connections cut first, then no more ticks and no goodbye. */
  kill(): Promise<void>;
}

export type RaftMemberOptions = Partial<RaftNodeOptions> & {
  /** Wraps the store (a disk that stalls or fills up). */
  wrapStore?: (s: DurableStore) => DurableStore;
};

export async function startRaftMember(
  id: number,
  peers: Record<number, string>,
  dir: string,
  opts: RaftMemberOptions = {},
): Promise<RaftMember> {
  const { wrapStore, ...options } = opts;
  const sm = new KvStateMachine();
  const raw = await LevelDbStore.open(dir);
  const store = wrapStore ? wrapStore(raw) : raw;
  let node: RaftNode | undefined;
  const transport = new GrpcTransport({
    selfId: id,
    handler: {
      receive: (m) => node?.receive(m),
      reportUnreachable: (p) => node?.reportUnreachable(p),
      reportSnapshot: (p, ok) => node?.reportSnapshot(p, ok),
    },
  });
  const server = new grpc.Server(RAFT_SERVER_OPTIONS);
  transport.register(server);
  const close = async () => {
    server.forceShutdown();
    await transport.close();
    await raw.close();
  };
  try {
    await new Promise<number>((resolve, reject) =>
      server.bindAsync(peers[id], grpc.ServerCredentials.createInsecure(), (e, p) =>
        e ? reject(e) : resolve(p),
      ),
    );
    node = await RaftNode.start({ id, peers, store, transport, stateMachine: sm, ...options });
  } catch (err) {
    await close();
    throw err;
  }
  const n = node;
  return {
    id,
    node: n,
    sm,
    store,
    async stop() {
      await n.stop();
      await close();
    },
    async kill() {
      // grpc-js 1.14 forceShutdown() leaves accepted connections open when
      // channelz is off (as RAFT_SERVER_OPTIONS has it): the peers would go
      // on talking to this dead member's closed transport, and never reach
      // its restarted self on the same address. A dying process cuts them.
      const servers = (
        server as unknown as { http2Servers?: Map<unknown, { sessions: Set<{ destroy(): void }> }> }
      ).http2Servers;
      for (const info of servers?.values() ?? []) for (const s of info.sessions) s.destroy();
      server.forceShutdown();
      await n.stop();
      await transport.close();
      await raw.close();
    },
  };
}
