/**
 * `baton logs` and `baton exec` through the masters to a node: three real
 * `baton master` processes, a node API served in this process over a fake
 * runtime (real Docker is the end-to-end suite's job), Node and Pod objects
 * that point at it, and the real CLI binary.
 */
import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { PassThrough, Readable, Writable } from 'node:stream';
import { ApiObject } from '../../src/api/types';
import { BatonClient, ClientError } from '../../src/client/cluster-client';
import { chooseContainer, DEFAULT_CONTAINER_ANNOTATION } from '../../src/master/pod-streams';
import { findContainer, NodeServer, startNodeServer } from '../../src/node/node-server';
import {
  ContainerDetail,
  ExecSession,
  INFRA,
  LogOptions,
  Runtime,
  RuntimeContainer,
} from '../../src/node/runtime';
import { runBaton, startBaton } from '../support/cli';
import { MasterCluster } from '../support/master-cluster';
import { freePort } from '../support/raft-kv/processes';
import { until } from '../support/until';

interface Followed {
  id: string;
  aborted: boolean;
}

interface Session {
  id: string;
  command: string[];
  killed: boolean;
}

/**
 * A runtime whose containers are records. Logs are fixed text (followed
 * logs add "tick N" lines); exec understands `exit N` (prints "out" and
 * "bye", exits N), `echo ARGS...`, `cat` (stdin to stdout) and `sleep`
 * (until killed).
 */
class FakeRuntime implements Runtime {
  readonly name = 'exec' as const;
  containers: RuntimeContainer[] = [];
  readonly text = new Map<string, string>();
  readonly followed: Followed[] = [];
  readonly sessions: Session[] = [];

  async list(): Promise<RuntimeContainer[]> {
    return this.containers;
  }

  async logs(id: string, opts: LogOptions): Promise<Readable> {
    const lines = (this.text.get(id) ?? '').split(/(?<=\n)/).filter((l) => l !== '');
    const out = new PassThrough();
    out.write(lines.slice(opts.tail === undefined ? 0 : lines.length - opts.tail).join(''));
    if (!opts.follow) {
      out.end();
      return out;
    }
    const rec: Followed = { id, aborted: false };
    this.followed.push(rec);
    let n = 0;
    const timer = setInterval(() => out.write(`tick ${++n}\n`), 50);
    opts.signal?.addEventListener('abort', () => {
      rec.aborted = true;
      clearInterval(timer);
      out.destroy();
    });
    out.on('close', () => clearInterval(timer));
    return out;
  }

  async exec(id: string, command: string[], opts: { stdin: boolean }): Promise<ExecSession> {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    const stdin = opts.stdin ? new PassThrough() : undefined;
    const rec: Session = { id, command, killed: false };
    this.sessions.push(rec);
    let exit!: (code: number) => void;
    const exitCode = new Promise<number>((r) => (exit = r));
    const finish = (code: number) => {
      stdout.end();
      stderr.end();
      exit(code);
    };
    const [cmd, ...args] = command;
    if (cmd === 'exit') {
      stdout.write('out\n');
      stderr.write('bye\n');
      finish(Number(args[0]));
    } else if (cmd === 'echo') {
      stdout.write(`${args.join(' ')}\n`);
      finish(0);
    } else if (cmd === 'cat') {
      if (!stdin) finish(0);
      stdin?.pipe(stdout, { end: false });
      stdin?.on('end', () => finish(0));
    } else if (cmd !== 'sleep') {
      stderr.write(`${cmd}: not found\n`);
      finish(127);
    }
    return {
      stdout,
      stderr,
      stdin,
      exitCode,
      kill: () => {
        rec.killed = true;
        finish(137);
      },
    };
  }

  inspect(): Promise<ContainerDetail> {
    throw new Error('not used');
  }
  startSandbox(): Promise<string> {
    throw new Error('not used');
  }
  startContainer(): Promise<string> {
    throw new Error('not used');
  }
  stop(): Promise<void> {
    throw new Error('not used');
  }
  remove(): Promise<void> {
    throw new Error('not used');
  }
}

const parse = (json: string) => JSON.parse(json) as ApiObject;

function nodeObject(name: string, port: number): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name },
    status: {
      conditions: [{ type: 'Ready', status: 'True' }],
      addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
      daemonEndpoints: { kubeletEndpoint: { Port: port } },
    },
  };
}

function podObject(name: string, spec: Record<string, unknown>, namespace = 'default'): ApiObject {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace },
    spec: {
      containers: [
        { name: 'app', image: 'busybox' },
        { name: 'sidecar', image: 'busybox' },
      ],
      ...spec,
    },
  };
}

function container(
  podUid: string,
  podName: string,
  name: string,
  restarts: number,
  running: boolean,
): RuntimeContainer {
  return {
    id: `${podName}-${name}-${restarts}`,
    podUid,
    namespace: 'default',
    podName,
    name,
    init: name === 'init',
    restarts,
    running,
    image: 'busybox',
  };
}

/** Collects what a stream is given. */
function sink(): Writable & { text(): string } {
  let s = '';
  const w = new Writable({
    write(chunk: Buffer, _enc, cb) {
      s += chunk.toString();
      cb();
    },
  });
  return Object.assign(w, { text: () => s });
}

describe('pod logs and exec through the masters to the node', function () {
  this.timeout(30_000);
  let c: MasterCluster;
  let client: BatonClient;
  let runtime: FakeRuntime;
  let server: NodeServer;
  let deadPort: number;
  let leaderAddress: string;
  let followerAddress: string;

  before(async () => {
    // Our node has no session with the leader: it must not be judged lost meanwhile.
    c = await MasterCluster.start(3, ['--node-grace-period-ms', '600000']);
    client = c.client();
    const leader = await c.leader();
    leaderAddress = c.addresses[leader];
    followerAddress = c.addresses[c.ids().find((id) => id !== leader)!];
    runtime = new FakeRuntime();
    server = await startNodeServer({ runtime, listen: '127.0.0.1:0' });
    deadPort = await freePort();
    await client.create(JSON.stringify(nodeObject('n1', server.port)));
    await client.create(JSON.stringify(nodeObject('n-dead', deadPort)));
    await client.create(
      JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } }),
    );
    const create = async (pod: ApiObject) =>
      parse((await client.create(JSON.stringify(pod))).objectJson).metadata.uid!;
    const web = await create(
      podObject('web', { nodeName: 'n1', initContainers: [{ name: 'init', image: 'busybox' }] }),
    );
    const teamWeb = await create(
      podObject(
        'web',
        {
          nodeName: 'n1',
          containers: [{ name: 'api', image: 'busybox' }],
        },
        'team',
      ),
    );
    await create(podObject('lost', { nodeName: 'n-dead' }));
    await create(podObject('pending', { nodeSelector: { disk: 'nowhere' } }));
    runtime.containers = [
      { ...container(web, 'web', INFRA, 0, true) },
      container(web, 'web', 'init', 0, false),
      container(web, 'web', 'app', 0, false),
      container(web, 'web', 'app', 1, true),
      container(web, 'web', 'sidecar', 0, true),
      { ...container(teamWeb, 'web', 'api', 0, true), namespace: 'team' },
    ];
    runtime.text.set('web-app-1', 'line1\nline2\nline3\n');
    runtime.text.set('web-app-0', 'previous run\n');
    runtime.text.set('web-sidecar-0', 'sidecar says hi\n');
    runtime.text.set('web-api-0', 'team api\n');
  });

  after(async () => {
    client?.close();
    await server?.close();
    await c?.stop();
  });

  const baton = (args: string[], via = followerAddress) => runBaton(via, args);

  it('logs: the default container, --tail, -c, -n and --previous, from any master', async () => {
    for (const via of [leaderAddress, followerAddress]) {
      const all = await baton(['logs', 'web'], via);
      assert.deepEqual(all, { code: 0, stdout: 'line1\nline2\nline3\n', stderr: '' });
    }
    assert.equal((await baton(['logs', 'web', '--tail', '2'])).stdout, 'line2\nline3\n');
    assert.equal((await baton(['logs', 'web', '-c', 'sidecar'])).stdout, 'sidecar says hi\n');
    assert.equal((await baton(['logs', 'web', '-n', 'team'])).stdout, 'team api\n');
    assert.equal((await baton(['logs', 'web', '-c', 'app', '-p'])).stdout, 'previous run\n');

    // A master that is down is skipped before the stream starts.
    const skipping = new BatonClient([`127.0.0.1:${await freePort()}`, followerAddress]);
    try {
      const chunks: Buffer[] = [];
      for await (const b of skipping.logs({ name: 'web', tailLines: 1 })) chunks.push(b);
      assert.equal(Buffer.concat(chunks).toString(), 'line3\n');
      const out = sink();
      const code = await skipping.exec(
        { name: 'web', command: ['cat'] },
        { stdin: Readable.from([Buffer.from('once')]), stdout: out, stderr: sink() },
      );
      assert.deepEqual([code, out.text()], [0, 'once']);
    } finally {
      skipping.close();
    }
  });

  it('logs: every "no" says why', async () => {
    const cases: [string[], string][] = [
      [['logs', 'ghost'], 'Error from server: pods "ghost" not found\n'],
      [['logs', 'pending'], 'Error from server: pod pending is not scheduled to a node yet\n'],
      [
        ['logs', 'web', '-c', 'nope'],
        'Error from server: container "nope" is not valid for pod "web": choose one of: [app sidecar] or one of the init containers: [init]\n',
      ],
      [
        ['logs', 'web', '-c', 'sidecar', '--previous'],
        'Error from server: previous terminated container "sidecar" in pod "web" not found\n',
      ],
    ];
    for (const [args, stderr] of cases) {
      const r = await baton(args);
      assert.deepEqual({ code: r.code, stderr: r.stderr }, { code: 1, stderr }, args.join(' '));
    }
    const lost = await baton(['logs', 'lost']);
    assert.equal(lost.code, 1);
    assert.match(
      lost.stderr,
      new RegExp(
        `^Error from server: node n-dead \\(127\\.0\\.0\\.1:${deadPort}\\) is unreachable: `,
      ),
    );
    await assert.rejects(
      async () => {
        for await (const _ of client.logs({ name: 'lost' })) void _;
      },
      (e: ClientError) => e.code === grpc.status.UNAVAILABLE && /node n-dead/.test(e.message),
    );
  });

  it('logs -f streams until interrupted, and the node stops reading', async () => {
    const cli = startBaton(followerAddress, ['logs', 'web', '-f', '--tail', '1']);
    await until('followed output', () => cli.stdout().includes('tick 2\n'), 10_000);
    cli.child.kill('SIGINT');
    const r = await cli.done;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^line3\ntick 1\ntick 2\n/);
    await until('the runtime stream aborted', () => runtime.followed[0]?.aborted === true, 5000);

    // Through the client: leaving the loop cancels the stream on the node.
    let text = '';
    for await (const b of client.logs({ name: 'web', follow: true, tailLines: 0 })) {
      text += b.toString();
      if (text.includes('tick 1\n')) break;
    }
    assert.equal(text, 'tick 1\n');
    await until('the second stream aborted', () => runtime.followed[1]?.aborted === true, 5000);
  });

  it('exec: exit code, output streams, arguments after --, stdin with -i', async () => {
    const failed = await baton(['exec', 'web', '--', 'exit', '3']);
    assert.deepEqual(failed, {
      code: 3,
      stdout: 'out\n',
      stderr: 'bye\ncommand terminated with exit code 3\n',
    });
    const echo = await baton(['exec', 'web', '-c', 'sidecar', '--', 'echo', '-c', 'x', '-n', 'y']);
    assert.deepEqual(echo, { code: 0, stdout: '-c x -n y\n', stderr: '' });
    assert.equal(runtime.sessions.at(-1)!.id, 'web-sidecar-0');

    const cat = startBaton(leaderAddress, ['exec', '-i', 'web', '--', 'cat']);
    cat.child.stdin!.end('hello\nworld\n');
    assert.deepEqual(await cat.done, { code: 0, stdout: 'hello\nworld\n', stderr: '' });

    const stdout = sink();
    const stderr = sink();
    const code = await client.exec(
      { name: 'web', command: ['cat'] },
      { stdin: Readable.from([Buffer.from('via '), Buffer.from('client')]), stdout, stderr },
    );
    assert.deepEqual([code, stdout.text(), stderr.text()], [0, 'via client', '']);
  });

  it('exec: refusals, an unreachable node, and cancelling kills the command', async () => {
    const notRunning = await baton(['exec', 'web', '-c', 'init', '--', 'echo']);
    assert.deepEqual(
      { code: notRunning.code, stderr: notRunning.stderr },
      { code: 1, stderr: 'Error from server: container "init" in pod "web" is not running\n' },
    );
    const lost = await baton(['exec', 'lost', '--', 'echo']);
    assert.equal(lost.code, 1);
    assert.match(
      lost.stderr,
      /^Error from server: node n-dead \(127\.0\.0\.1:\d+\) is unreachable/,
    );

    const ac = new AbortController();
    const running = client.exec(
      { name: 'web', command: ['sleep'] },
      { stdout: sink(), stderr: sink(), signal: ac.signal },
    );
    await until('the command started', () => runtime.sessions.at(-1)?.command[0] === 'sleep');
    ac.abort();
    await assert.rejects(running, (e: ClientError) => e.code === grpc.status.CANCELLED);
    await until('the command killed', () => runtime.sessions.at(-1)!.killed, 5000);
  });
});

describe('choosing the container', () => {
  const pod = (annotations: Record<string, string> = {}): ApiObject => ({
    ...podObject('p', { initContainers: [{ name: 'setup', image: 'busybox' }] }),
    metadata: { name: 'p', annotations },
  });

  it('by name, by annotation, else the first (as kubectl does)', () => {
    const cases: [ApiObject, string, string][] = [
      [pod(), '', 'app'],
      [pod(), 'sidecar', 'sidecar'],
      [pod(), 'setup', 'setup'],
      [pod({ [DEFAULT_CONTAINER_ANNOTATION]: 'sidecar' }), '', 'sidecar'],
      [pod({ [DEFAULT_CONTAINER_ANNOTATION]: 'gone' }), '', 'app'],
    ];
    for (const [p, asked, want] of cases) assert.equal(chooseContainer(p, asked), want);
    assert.throws(() => chooseContainer(pod(), 'x'), /choose one of: \[app sidecar\]/);
  });

  it('on the node: the current attempt, or the one before it', () => {
    const cs = [
      container('u1', 'p', 'app', 0, false),
      container('u1', 'p', 'app', 2, true),
      container('u1', 'p', 'app', 1, false),
      container('u2', 'q', 'app', 5, true),
    ];
    assert.equal(findContainer(cs, 'u1', 'app', false).restarts, 2);
    assert.equal(findContainer(cs, 'u1', 'app', true).restarts, 1);
    assert.throws(() => findContainer(cs, 'u1', 'web', false), /container "web" in pod "p"/);
    assert.throws(
      () => findContainer(cs.slice(1, 2), 'u1', 'app', true),
      /previous terminated container "app" in pod "p" not found/,
    );
  });
});
