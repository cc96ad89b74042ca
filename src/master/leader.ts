/**
 * The leader-only lifecycle: when this master becomes the Raft leader it
 * first waits until everything committed before its term is applied (a
 * ReadIndex barrier), then starts the scheduler, the controllers and the
 * dispatcher's liveness checks under one AbortSignal, aborted the moment
 * leadership is lost. Every write they make is fenced by the term they
 * started in, so a deposed leader's late proposals are refused by apply.
 */
import type { Logger } from 'pino';
import { RaftNode } from '../raft/raft-node';
import { AdmissionEnv } from './admission';
import {
  ControllerContext,
  DEFAULT_SETTINGS,
  LoopSettings,
  NodeHeartbeats,
} from './controllers/runtime/controller';
import { EventRecorder } from './controllers/runtime/events';
import { Coalescer, Writer } from './controllers/runtime/writer';
import { ClusterStore } from './store/cluster-store';
import { CommandResult } from './store/commands';

/** Something the leader runs: resolves when its context's signal aborts. */
export interface LeaderLoop {
  run(): Promise<void>;
}

export type LoopFactory = (ctx: ControllerContext) => LeaderLoop[];

export interface LeaderLoopsOptions {
  node: RaftNode;
  store: ClusterStore;
  env: AdmissionEnv;
  log: Logger;
  loops: LoopFactory;
  /** Heartbeats for this term (the dispatcher's), made fresh for each term. */
  heartbeats: (term: number) => NodeHeartbeats;
  settings?: Partial<LoopSettings>;
}

export class LeaderLoops {
  private current?: { term: number; abort: AbortController; done: Promise<void> };
  private stopped = false;

  constructor(private readonly opts: LeaderLoopsOptions) {
    opts.node.onLeaderChange((leader, term) => {
      if (leader === opts.node.id) void this.lead(term);
      else this.stepDown();
    });
  }

  /** The running loops' context, while this master leads. */
  context?: ControllerContext;

  private async lead(term: number): Promise<void> {
    this.stepDown();
    if (this.stopped) return;
    const abort = new AbortController();
    const { node, store, env, log } = this.opts;
    let finish!: () => void;
    this.current = { term, abort, done: new Promise((r) => (finish = r)) };
    try {
      // Everything an earlier leader committed must be visible before deciding anything.
      for (;;) {
        try {
          await node.readIndex();
          break;
        } catch (err) {
          if (abort.signal.aborted || !node.isLeader()) return;
          log.debug({ err }, 'waiting for the leader barrier');
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      if (abort.signal.aborted) return;
      const coalescer = new Coalescer(async (commands) => {
        if (abort.signal.aborted) throw new Error('no longer the leader');
        const r = await node.propose(
          store.codec.encode({ op: 'fenced', term, command: { op: 'each', commands } }),
        );
        const res = r.result as CommandResult;
        if (!res.ok) return commands.map(() => res);
        return res.results!;
      });
      const ctx: ControllerContext = {
        store,
        writer: new Writer(store, env, coalescer),
        events: new EventRecorder(store, coalescer, env, log.child({ component: 'events' })),
        env,
        log,
        signal: abort.signal,
        heartbeats: this.opts.heartbeats(term),
        settings: { ...DEFAULT_SETTINGS, ...this.opts.settings },
      };
      ctx.events.startGarbageCollection(abort.signal);
      this.context = ctx;
      log.info({ term }, 'leading: scheduler and controllers started');
      const loops = this.opts.loops(ctx);
      await Promise.all(
        loops.map((l) =>
          l.run().catch((err) => {
            if (!abort.signal.aborted) log.error({ err }, 'a leader loop failed');
          }),
        ),
      );
    } finally {
      finish();
    }
  }

  private stepDown(): void {
    const c = this.current;
    if (!c) return;
    this.current = undefined;
    this.context = undefined;
    c.abort.abort();
    this.opts.log.info({ term: c.term }, 'no longer leading: loops stopped');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const c = this.current;
    this.stepDown();
    await c?.done;
  }
}
