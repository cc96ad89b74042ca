/**
 * The exec runtime on real host processes: a pod's sandbox record and its
 * containers as process groups, their logs, exec, how they end (by
 * themselves, on SIGTERM, on SIGKILL after the grace period), and a new
 * runtime instance adopting what an earlier one started.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { ExecRuntime } from '../../src/node/exec-runtime';
import {
  execOnce,
  RuntimeError,
  type ContainerLaunch,
  type PodRef,
  type RuntimeContainer,
} from '../../src/node/runtime';
import { until } from '../support/until';

const ISO_SECONDS = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;

/** Processes of group `pgid` that are not zombies (orphans may wait a moment to be reaped). */
function liveMembers(pgid: number): number[] {
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const f = readFileSync(`/proc/${e}/stat`, 'utf8').split(') ')[1].split(' ');
        return Number(f[2]) === pgid && f[0] !== 'Z';
      } catch {
        return false; // gone meanwhile
      }
    })
    .map(Number);
}

/** Everything the stream gives until it ends. */
async function text(s: Readable): Promise<string> {
  let out = '';
  for await (const chunk of s) out += String(chunk);
  return out;
}

describe('exec runtime: pods as host processes', function () {
  this.timeout(20_000);
  const pod: PodRef = { uid: 'uid-1', namespace: 'default', name: 'web' };
  let stateDir: string;
  let rt: ExecRuntime;
  let sandbox: string;

  const start = (name: string, command: string[], more: Partial<ContainerLaunch> = {}) =>
    rt.startContainer(
      {
        pod,
        name,
        init: false,
        restarts: 0,
        image: 'ignored',
        command,
        env: [],
        mounts: [],
        ...more,
      },
      sandbox,
    );
  const logs = async (id: string, tail?: number) =>
    text(await rt.logs(id, { follow: false, tail }));
  const exited = async (id: string) => {
    await until(`${id} to exit`, async () => !(await rt.inspect(id)).running, 5000);
    return rt.inspect(id);
  };
  const metaFile = (id: string) => path.join(stateDir, id, 'meta.json');
  const pidOf = (id: string) =>
    (JSON.parse(readFileSync(metaFile(id), 'utf8')) as { pid: number }).pid;
  const byId = (cs: RuntimeContainer[]) => [...cs].sort((a, b) => (a.id < b.id ? -1 : 1));

  before(async () => {
    stateDir = await mkdtemp(path.join(tmpdir(), 'baton-exec-'));
    rt = new ExecRuntime('node-1', stateDir);
    sandbox = await rt.startSandbox({ pod, hostname: 'web', hostPorts: [] });
  });

  after(async () => {
    for (const c of await rt.list()) await rt.remove(c.id, 0);
    await rm(stateDir, { recursive: true, force: true });
  });

  describe('a running container', () => {
    let main: string;

    before(async () => {
      main = await start('main', ['sh', '-c', 'echo hello; echo oops >&2; sleep 30'], {
        env: [
          ['FOO', 'first'],
          ['FOO', 'bar'],
        ],
        mounts: [{ hostPath: '/srv/cache', containerPath: '/data/cache/', readOnly: false }],
      });
      await until('the output', async () => (await logs(main)).includes('oops'), 5000);
    });

    it('is listed as running beside its sandbox, which has the host IP', async () => {
      assert.deepEqual(
        byId(await rt.list()).map((c) => [c.id, c.name, c.podUid, c.podName, c.running]),
        [
          ['uid-1/POD-0', 'POD', 'uid-1', 'web', true],
          ['uid-1/main-0', 'main', 'uid-1', 'web', true],
        ],
      );
      assert.equal((await rt.inspect(sandbox)).ip, '127.0.0.1');
      const d = await rt.inspect(main);
      assert.equal(d.running, true);
      assert.match(d.startedAt!, ISO_SECONDS);
      assert.equal(d.finishedAt, undefined);
    });

    it('logs stdout and stderr to one file, whole or the last lines', async () => {
      assert.equal(await logs(main), 'hello\noops\n');
      assert.equal(await logs(main, 1), 'oops\n');
      assert.equal(await logs(main, 5), 'hello\noops\n');
      assert.equal(await logs(main, 0), '');
    });

    it('follows the log until the signal aborts', async () => {
      const ac = new AbortController();
      const s = await rt.logs(main, { follow: true, tail: 1, signal: ac.signal });
      let seen = '';
      s.on('data', (d) => {
        seen += String(d);
        ac.abort();
      });
      await new Promise((resolve) => s.once('end', resolve));
      assert.equal(seen, 'oops\n');
    });

    it('execs a host process with exactly the spec env (later wins), PATH and HOME', async () => {
      assert.deepEqual(await execOnce(rt, main, ['sh', '-c', 'echo $FOO'], 5000), {
        exitCode: 0,
        output: 'bar\n',
        timedOut: false,
      });
      const env = (await execOnce(rt, main, ['env'], 5000)).output.trim().split('\n').sort();
      assert.deepEqual(env, [
        'BATON_VOLUME_DATA_CACHE=/srv/cache',
        'FOO=bar',
        'HOME=/',
        `PATH=${process.env.PATH}`,
      ]);
      const pwd = (await execOnce(rt, main, ['pwd'], 5000)).output.trim();
      assert.equal(realpathSync(pwd), realpathSync(path.join(stateDir, 'uid-1/main-0/work')));
      assert.equal((await execOnce(rt, main, ['sh', '-c', 'exit 5'], 5000)).exitCode, 5);
    });

    it('passes stdin to an exec when asked', async () => {
      const s = await rt.exec(main, ['cat'], { stdin: true });
      s.stdin!.end('ping');
      const [out, code] = await Promise.all([text(s.stdout), s.exitCode]);
      assert.deepEqual([out, code], ['ping', 0]);
    });

    it('stops with SIGTERM to the group: exit 143, logs kept, no more exec', async () => {
      const session = await rt.exec(main, ['sleep', '30'], { stdin: false });
      // A grace far longer than stopping takes, even on a loaded machine:
      // returning in well under half of it means stop did not wait it out.
      const t0 = Date.now();
      await rt.stop(main, 10);
      const took = Date.now() - t0;
      assert.ok(took < 5000, `sleep dies of SIGTERM without waiting for the grace (${took} ms)`);
      const d = await rt.inspect(main);
      assert.deepEqual([d.running, d.exitCode, d.oomKilled], [false, 143, false]);
      assert.match(d.finishedAt!, ISO_SECONDS);
      assert.equal(readFileSync(path.join(stateDir, main, 'exit-code'), 'utf8').trim(), '143');
      assert.equal((await rt.list()).find((c) => c.id === main)?.running, false);
      assert.equal(await logs(main), 'hello\noops\n');
      // A stopped container's log is followed to its end (`logs --previous -f`).
      assert.equal(await text(await rt.logs(main, { follow: true })), 'hello\noops\n');
      await assert.rejects(rt.exec(main, ['true'], { stdin: false }), /not running/);
      assert.equal(await session.exitCode, 137, 'stop ends exec sessions too');
    });
  });

  describe('how a container ends', () => {
    it('the container process itself has exactly the spec env, in its working dir', async () => {
      const env = await start('env', ['env'], { env: [['A', '1']] });
      const pwd = await start('pwd', ['pwd'], { workingDir: stateDir });
      await exited(env);
      await exited(pwd);
      assert.deepEqual((await logs(env)).trim().split('\n').sort(), [
        'A=1',
        'HOME=/',
        `PATH=${process.env.PATH}`,
      ]);
      assert.equal(realpathSync((await logs(pwd)).trim()), realpathSync(stateDir));
    });

    it('a process ignoring SIGTERM is SIGKILLed after the grace period: exit 137', async () => {
      const id = await start('stubborn', ['sh', '-c', "trap '' TERM; echo ready; sleep 30"]);
      await until('the trap', async () => (await logs(id)).includes('ready'), 5000);
      const pid = pidOf(id);
      const t0 = Date.now();
      await rt.stop(id, 1);
      assert.ok(Date.now() - t0 >= 950, 'waited for the grace period');
      const d = await rt.inspect(id);
      assert.deepEqual([d.running, d.exitCode], [false, 137]);
      assert.deepEqual(liveMembers(pid), [], 'the whole group is gone');
    });

    it('a command handling SIGTERM itself has its own exit code recorded', async () => {
      const id = await start('graceful', [
        'sh',
        '-c',
        "trap 'exit 7' TERM; echo ready; sleep 30 & wait",
      ]);
      await until('the trap', async () => (await logs(id)).includes('ready'), 5000);
      await rt.stop(id, 5);
      assert.equal((await rt.inspect(id)).exitCode, 7);
    });

    it('a command exiting by itself keeps its exit code; args alone are the command', async () => {
      const id = await start('three', [], { args: ['sh', '-c', 'exit 3'] });
      const d = await exited(id);
      assert.deepEqual([d.running, d.exitCode], [false, 3]);
      assert.ok(d.finishedAt! >= d.startedAt!);
      assert.deepEqual(await rt.inspect(id), d, 'the end is recorded once');
    });

    it('a followed log ends once the process exited and its output is read', async () => {
      const id = await start('short', ['sh', '-c', 'echo one; sleep 0.3; echo two']);
      assert.equal(await text(await rt.logs(id, { follow: true })), 'one\ntwo\n');
    });

    it('a reused pid is not mistaken for the container; gone without a record is 137', async () => {
      const id = await start('reused', ['true']);
      await exited(id);
      const meta = JSON.parse(readFileSync(metaFile(id), 'utf8')) as Record<string, unknown>;
      // Our own pid runs, but did not start when the record says.
      writeFileSync(
        metaFile(id),
        JSON.stringify({ ...meta, pid: process.pid, finishedAt: undefined }),
      );
      await unlink(path.join(stateDir, id, 'exit-code'));
      const d = await rt.inspect(id);
      assert.deepEqual([d.running, d.exitCode], [false, 137]);
      assert.equal((await rt.list()).find((c) => c.id === id)?.running, false);
    });
  });

  describe('a new daemon, refusals, removal', () => {
    it('a new runtime on the same state dir adopts what is running and what ended', async () => {
      const id = await start('adopted', ['sleep', '30']);
      const before = byId(await rt.list());
      const rt2 = new ExecRuntime('node-1', stateDir);
      assert.deepEqual(byId(await rt2.list()), before);
      assert.ok(before.some((c) => c.id === id && c.running));
      for (const c of before)
        if (c.name !== 'POD') assert.deepEqual(await rt2.inspect(c.id), await rt.inspect(c.id));
      const onHost = new ExecRuntime('node-1', stateDir, { hostIP: '10.0.0.7' });
      assert.equal((await onHost.inspect(sandbox)).ip, '10.0.0.7');
      await rt2.stop(id, 1);
      assert.deepEqual(
        [(await rt.inspect(id)).running, (await rt.inspect(id)).exitCode],
        [false, 143],
      );
      assert.deepEqual(await new ExecRuntime('node-2', stateDir).list(), []);
    });

    it('adopts what a daemon that has since exited started; the exit code is recorded without it', async () => {
      // The earlier daemon: another node process, gone before we look.
      const earlier = `
        const { ExecRuntime } = require(${JSON.stringify(path.join(__dirname, '../../src/node/exec-runtime.js'))});
        (async () => {
          const rt = new ExecRuntime('node-1', process.argv[1]);
          const pod = { uid: 'uid-2', namespace: 'default', name: 'old' };
          const sb = await rt.startSandbox({ pod, hostname: 'old', hostPorts: [] });
          const base = { pod, init: false, restarts: 0, image: '', env: [], mounts: [] };
          await rt.startContainer({ ...base, name: 'later', command: ['sh', '-c', 'sleep 0.5; exit 4'] }, sb);
          await rt.startContainer({ ...base, name: 'long', command: ['sleep', '30'] }, sb);
        })();`;
      execFileSync(process.execPath, ['-e', earlier, stateDir]);
      const old = byId((await rt.list()).filter((c) => c.podUid === 'uid-2'));
      assert.deepEqual(
        old.map((c) => c.id),
        ['uid-2/POD-0', 'uid-2/later-0', 'uid-2/long-0'],
      );
      assert.equal(old[2].running, true);
      assert.deepEqual((await exited('uid-2/later-0')).exitCode, 4);
      await rt.stop('uid-2/long-0', 1);
      assert.deepEqual((await rt.inspect('uid-2/long-0')).exitCode, 143);
    });

    it('refuses a missing executable (RunContainerError) and no command at all', async () => {
      await assert.rejects(
        start('missing', ['no-such-binary-baton']),
        (err) =>
          err instanceof RuntimeError &&
          err.reason === 'RunContainerError' &&
          err.message.includes('"no-such-binary-baton"'),
      );
      assert.equal(existsSync(path.join(stateDir, 'uid-1/missing-0')), false);
      await assert.rejects(
        start('empty', []),
        (err) => err instanceof RuntimeError && err.reason === 'CreateContainerError',
      );
      await assert.rejects(rt.inspect('uid-1/missing-0'), /no such container/);
      await assert.rejects(rt.inspect('../etc'), /no such container/);
    });

    it('two removals of one container at once (two daemons on one state dir) both succeed', async () => {
      // Seen in CI: a test's cleanup removed a container while the node's own removal of it
      // was recording its end, whose directory had just gone.
      for (let i = 0; i < 5; i++) {
        const id = await start(`twice${i}`, ['sleep', '30']);
        const other = new ExecRuntime('node-1', stateDir);
        await Promise.all([rt.remove(id, 0), other.remove(id, 0)]);
        assert.equal(existsSync(path.join(stateDir, id)), false);
      }
    });

    it('remove kills and forgets; the pod leaves no directory behind', async () => {
      const id = await start('removed', ['sleep', '30']);
      const pid = pidOf(id);
      await rt.remove(id, 0);
      assert.equal(existsSync(path.join(stateDir, id)), false);
      await until('the process to go', () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      });
      await rt.remove(id, 0); // already gone: not an error
      // As the agent removes pods: containers first, sandboxes last.
      const all = await rt.list();
      for (const c of all) if (c.name !== 'POD') await rt.remove(c.id, 0);
      for (const c of all) if (c.name === 'POD') await rt.remove(c.id, 0);
      assert.deepEqual(await rt.list(), []);
      assert.deepEqual(await readdir(stateDir), []);
    });
  });
});
