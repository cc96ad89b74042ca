import * as grpc from '@grpc/grpc-js';
import { randomFillSync, randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { authorizationInterceptor } from '../ca/authz';
import { issueCertificate, Role } from '../ca/pki';
import { CertRenewer } from '../ca/renewal';
import { TLS_CHANNEL_OPTIONS } from '../ca/tls';
import { silentLogger } from '../common/log';
import { ClusterClient, ClusterService, ClusterStatusResponse } from '../gen/api';
import { DispatcherService, NodeApiClient } from '../gen/node';
import { GrpcTransport, RAFT_SERVER_OPTIONS } from '../raft/grpc-transport';
import { LevelDbStore } from '../raft/leveldb-store';
import { RaftNode, RaftNodeOptions } from '../raft/raft-node';
import { AdmissionEnv, timestamp } from './admission';
import { clusterService } from './api-server';
import { leaderLoops } from './controllers';
import { DEFAULT_SETTINGS, LoopSettings } from './controllers/runtime/controller';
import { DEFAULT_SERVICE_NETWORK, ServiceAllocator, ServiceNetwork } from './service-alloc';
import { Dispatcher } from './dispatcher';
import { SecurityOptions } from './enrollment';
import { enableFeatures } from './features';
import { LeaderLoops } from './leader';
import { ClusterStore } from './store/cluster-store';
import { CommandCodec } from './store/command-codec';
import { KeyRing } from './store/key-ring';

export interface MasterOptions {
  id: number;
  /** host:port for both peers and clients. */
  listen: string;
  /** The address other masters and clients use to reach this one (defaults to `listen`). */
  advertise?: string;
  /** Founding members by id (including this one) when bootstrapping a new cluster. */
  peers: Record<number, string>;
  dataDir: string;
  /** Start a new cluster from `peers` when the data directory is empty. */
  bootstrap: boolean;
  /** An existing master to ask for membership when the data directory is empty. */
  join?: string;
  logger?: Logger;
  raft?: Partial<RaftNodeOptions>;
  watchHistory?: number;
  /** See ApiServerDeps.admission. */
  admission?: 'leader' | 'local';
  /** Node grace period, pod eviction delay, resync interval of the leader's loops. */
  loops?: Partial<LoopSettings>;
  /** Nodes heartbeat this often. */
  heartbeatPeriodMs?: number;
  /** Where Service addresses and node ports come from (default DEFAULT_SERVICE_NETWORK). */
  services?: Partial<ServiceNetwork>;
  /** Run no scheduler or controllers (a master for API tests only). */
  noLeaderLoops?: boolean;
  /**
   * Mutual TLS with the cluster CA on every connection, and roles on every
   * RPC. Absent: plaintext with no checks (`--insecure`, and in-process tests).
   */
  security?: SecurityOptions & { pkiDir?: string };
  /**
   * The keys that seal Secrets in the Raft log and snapshots (`baton master`
   * passes masterKeyRing(dataDir)). Without them Secrets are stored in the clear.
   */
  secretKeys?: KeyRing;
}

export interface Master {
  node: RaftNode;
  store: ClusterStore;
  loops?: LeaderLoops;
  port: number;
  /** Settles with the error when Raft storage failed and this master stopped being a member (a full disk). */
  failed: Promise<Error>;
  stop(): Promise<void>;
}

const CLIENT_OPTIONS: grpc.ClientOptions = {
  ...TLS_CHANNEL_OPTIONS,
  'grpc.max_receive_message_length': -1,
  'grpc.max_send_message_length': -1,
};

const SUFFIX_CHARS = 'bcdfghjklmnpqrstvwxz2456789';
/** Random bytes drawn 4 KiB at a time: one getrandom call per 800 names, not one per name. */
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

/** Five random characters for generateName, as Kubernetes makes them. */
function randomSuffix(): string {
  if (poolAt + 5 > pool.length) {
    randomFillSync(pool);
    poolAt = 0;
  }
  let s = '';
  for (let i = 0; i < 5; i++) s += SUFFIX_CHARS[pool[poolAt++] % SUFFIX_CHARS.length];
  return s;
}

export const realAdmissionEnv: AdmissionEnv = {
  now: () => new Date(),
  uid: () => randomUUID(),
  suffix: () => randomSuffix(),
};

/**
 * One `baton master`: the Raft member, the replicated object store and the
 * Cluster API, all on one gRPC port. The leader also makes sure the
 * `default` namespace exists.
 */
export async function startMaster(opts: MasterOptions): Promise<Master> {
  const log = opts.logger ?? silentLogger();
  mkdirSync(opts.dataDir, { recursive: true });
  const store = new ClusterStore({
    watchHistory: opts.watchHistory,
    codec: new CommandCodec(opts.secretKeys),
  });
  const raftStore = await LevelDbStore.open(join(opts.dataDir, 'raft'), { logger: log });
  const ref: { node?: RaftNode } = {};
  const tls = opts.security?.tls;
  const credentials = (expect: Role[]) =>
    tls ? tls.channelCredentials(expect) : grpc.credentials.createInsecure();
  const transport = new GrpcTransport({
    selfId: opts.id,
    logger: log,
    credentials: credentials(['master']),
    handler: {
      receive: (m) => ref.node?.receive(m),
      reportUnreachable: (id) => ref.node?.reportUnreachable(id),
      reportSnapshot: (id, ok) => ref.node?.reportSnapshot(id, ok),
      isRemoved: (id) => ref.node?.isRemoved(id) ?? false,
      reportRemoved: (by) => ref.node?.reportRemoved(by),
    },
  });
  const advertise = opts.advertise ?? opts.listen;
  let node: RaftNode;
  try {
    node = ref.node = await RaftNode.start({
      id: opts.id,
      peers: { ...opts.peers, [opts.id]: advertise },
      store: raftStore,
      transport,
      // Snapshots are captured at once and serialized off the Raft loop.
      stateMachine: {
        apply: (data, index, term) => store.apply(data, index, term),
        snapshot: () => store.capture(),
        restore: (data) => store.restore(data),
      },
      bootstrap: opts.bootstrap && !opts.join ? Object.keys(opts.peers).map(Number) : undefined,
      logger: log,
      ...opts.raft,
    });
  } catch (err) {
    // A snapshot it cannot read (no key for its Secrets): nothing may keep running.
    await transport.close();
    await raftStore.close();
    throw err;
  }
  try {
    // Serve nothing until the state is what this master had committed: a
    // log it cannot read (a missing secrets key) fails here, not later.
    await node.replayed();
  } catch (err) {
    await node.stop();
    await transport.close();
    await raftStore.close();
    throw err;
  }

  const clients = new Map<string, ClusterClient>();
  const peerClient = (address: string) => {
    let c = clients.get(address);
    if (!c)
      clients.set(
        address,
        (c = new ClusterClient(address, credentials(['master']), CLIENT_OPTIONS)),
      );
    return c;
  };
  const nodeClients = new Map<string, NodeApiClient>();
  const nodeClient = (address: string) => {
    let c = nodeClients.get(address);
    if (!c)
      nodeClients.set(
        address,
        (c = new NodeApiClient(address, credentials(['node']), {
          ...CLIENT_OPTIONS,
          // A node back after a restart is reached again within a second.
          'grpc.initial_reconnect_backoff_ms': 100,
          'grpc.max_reconnect_backoff_ms': 1000,
        })),
      );
    return c;
  };
  const network = { ...DEFAULT_SERVICE_NETWORK, ...opts.services };
  const server = new grpc.Server({
    ...RAFT_SERVER_OPTIONS,
    'grpc.max_send_message_length': -1,
    interceptors: tls ? [authorizationInterceptor(tls.cluster)] : [],
  });
  transport.register(server);
  server.addService(
    ClusterService,
    clusterService({
      node,
      store,
      env: realAdmissionEnv,
      log,
      peerClient,
      nodeClient,
      admission: opts.admission,
      services: new ServiceAllocator(network),
      security: opts.security,
    }),
  );
  const dispatcher = new Dispatcher({
    node,
    log,
    heartbeatPeriodMs: opts.heartbeatPeriodMs,
    network: {
      serviceCIDR: network.serviceCIDR,
      clusterCIDR: opts.loops?.clusterCIDR ?? DEFAULT_SETTINGS.clusterCIDR,
    },
  });
  server.addService(DispatcherService, dispatcher.service());
  const loops = opts.noLeaderLoops
    ? undefined
    : new LeaderLoops({
        node,
        store,
        env: realAdmissionEnv,
        log,
        heartbeats: () => dispatcher.heartbeatsFor(),
        loops: (ctx) => leaderLoops(ctx, dispatcher),
        settings: opts.loops,
      });

  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(
        opts.listen,
        tls ? tls.serverCredentials() : grpc.ServerCredentials.createInsecure(),
        (err, p) => (err ? reject(err) : resolve(p)),
      ),
    );
  } catch (err) {
    // Nothing may keep running (Raft's timers, LevelDB's lock) when the master cannot serve.
    await loops?.stop();
    await node.stop();
    server.forceShutdown();
    await transport.close();
    await raftStore.close();
    const why = /EADDRINUSE/.test((err as Error).message)
      ? 'the address is already in use (another master, or another program?)'
      : (err as Error).message;
    throw new Error(`cannot listen on ${opts.listen}: ${why}`);
  }

  // The leader turns on the log features every master has.
  const stopFeatures = enableFeatures({ node, store, peerClient, log });
  // A new leader makes sure the default namespace exists (as kube-apiserver does).
  node.onLeaderChange((leader) => {
    if (leader !== node.id) return;
    setTimeout(() => {
      if (!node.isLeader() || store.get('Namespace', undefined, 'default')) return;
      const object = {
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: {
          name: 'default',
          uid: realAdmissionEnv.uid(),
          creationTimestamp: timestamp(new Date()),
        },
        spec: { finalizers: ['kubernetes'] },
        status: { phase: 'Active' },
      };
      node.propose(store.codec.encode({ op: 'create', object })).catch(() => {
        // Another leader will try again; the namespace exists implicitly meanwhile.
      });
    }, 100);
  });

  const s0 = node.status().confState;
  const fresh = s0.voters.length === 0 && s0.learners.length === 0;
  if (fresh && opts.join)
    await joinCluster(opts.join, opts.id, advertise, log, credentials(['master']), (id, addr) =>
      transport.addPeer(id, addr),
    );
  // A master signs its own renewed certificate with the CA key it holds.
  const renewer =
    tls?.ca &&
    new CertRenewer({
      tls,
      pkiDir: opts.security?.pkiDir,
      log: log.child({ component: 'pki' }),
      renew: (publicKeyPem) =>
        issueCertificate(tls.ca!, {
          ...tls.identity,
          publicKeyPem,
          ttlMs: opts.security?.certTtlMs,
        }),
    });
  renewer?.start();
  log.info({ id: opts.id, port, fresh }, 'master started');

  const failed = new Promise<Error>((resolve) => node.onFailure(resolve));

  return {
    node,
    store,
    loops,
    port,
    failed,
    async stop() {
      renewer?.stop();
      stopFeatures();
      await loops?.stop();
      await node.stop();
      // Unary calls in flight get a moment to finish; watch streams and the
      // other masters' peer streams never end by themselves, so then cut them.
      await Promise.race([
        new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
        new Promise<void>((resolve) => setTimeout(resolve, 500).unref()),
      ]);
      server.forceShutdown();
      for (const c of clients.values()) c.close();
      for (const c of nodeClients.values()) c.close();
      await transport.close();
      await raftStore.close();
    },
  };
}

/** Asks an existing master (forwarded to the leader) to add this one; retries while the cluster is busy. */
async function joinCluster(
  address: string,
  id: number,
  advertise: string,
  log: Logger,
  credentials: grpc.ChannelCredentials,
  addPeer: (id: number, address: string) => void,
): Promise<void> {
  const client = new ClusterClient(address, credentials, CLIENT_OPTIONS);
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        // Learn where the members are first: the leader starts replicating
        // to this learner at once, and its answers must find their way back.
        const members = await new Promise<ClusterStatusResponse>((resolve, reject) =>
          client.status({}, new grpc.Metadata(), { deadline: Date.now() + 5000 }, (err, res) =>
            err ? reject(err) : resolve(res),
          ),
        );
        for (const m of members.members)
          if (Number(m.id) !== id && m.address) addPeer(Number(m.id), m.address);
        await new Promise((resolve, reject) =>
          client.join(
            { id, address: advertise },
            new grpc.Metadata(),
            { deadline: Date.now() + 60_000 },
            (err, res) => (err ? reject(err) : resolve(res)),
          ),
        );
        log.info({ via: address }, 'joined the cluster');
        return;
      } catch (err) {
        const e = err as grpc.ServiceError;
        if (
          attempt >= 10 ||
          e.code === grpc.status.INVALID_ARGUMENT ||
          e.code === grpc.status.ALREADY_EXISTS ||
          e.code === grpc.status.FAILED_PRECONDITION
        )
          throw new Error(
            `joining the cluster through ${address} failed: ${e.details ?? e.message}`,
          );
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
    }
  } finally {
    client.close();
  }
}
