/**
 * The lab itself: two simulated machines, each with its own dockerd and
 * test images, that reach each other (and the host) over the lab bridge,
 * bridged containers on a machine's own docker0 range, and a teardown that
 * leaves nothing behind, even after a run that never cleaned up.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import Docker from 'dockerode';
import { TEST_IMAGE } from '../support/docker';
import { Lab, LabHost, requireLab } from '../support/lab';
import { until } from '../support/until';

/** A host-network container run to its end: exit code and (tty) output. */
async function runContainer(
  docker: Docker,
  cmd: string[],
): Promise<{ code: number; output: string }> {
  const c = await docker.createContainer({
    Image: TEST_IMAGE,
    Cmd: cmd,
    Tty: true,
    HostConfig: { NetworkMode: 'host' },
  });
  try {
    await c.start();
    const { StatusCode } = (await c.wait()) as { StatusCode: number };
    const output = (await c.logs({ stdout: true, stderr: true })).toString();
    return { code: StatusCode, output };
  } finally {
    await c.remove({ force: true });
  }
}

/** Starts a busybox httpd on `port` serving `body`, in the machine's own network namespace. */
async function serve(h: LabHost, port: number, body: string): Promise<void> {
  const c = await h.docker.createContainer({
    Image: TEST_IMAGE,
    Cmd: [
      'sh',
      '-c',
      `mkdir /www && echo ${body} > /www/index.html && httpd -f -p ${port} -h /www`,
    ],
    HostConfig: { NetworkMode: 'host' },
  });
  await c.start();
  await until(`httpd on ${h.name}:${port}`, async () => {
    const r = await h.exec(['sh', '-c', `cat /proc/net/tcp /proc/net/tcp6`]);
    return r.stdout.includes(`:${port.toString(16).toUpperCase().padStart(4, '0')} `);
  });
}

function tcpGet(host: string, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, host);
    let out = '';
    s.setTimeout(5_000, () => s.destroy(new Error(`no answer from ${host}:${port}`)));
    s.on('connect', () => s.write(`GET /index.html HTTP/1.0\r\nHost: ${host}\r\n\r\n`));
    s.on('data', (d) => (out += d.toString()));
    s.on('end', () => resolve(out));
    s.on('error', reject);
  });
}

/** Everything the host still holds for lab `name`, one line each; empty when it is all gone. */
function leftovers(lab: Pick<Lab, 'name' | 'dir' | 'bridge'>): string[] {
  const sh = (cmd: string) => execFileSync('sh', ['-c', cmd]).toString();
  const found: string[] = [];
  const base = `baton-lab-${lab.name}-`;
  for (const ns of sh('ip netns list').split('\n'))
    if (ns.startsWith(`${lab.name}h`)) found.push(`netns ${ns}`);
  for (const line of sh('ip -o link show').split('\n'))
    if (new RegExp(`^\\d+: ${lab.name}(br|v\\d|p\\d)`).test(line)) found.push(`link ${line}`);
  for (const line of readFileSync('/proc/mounts', 'utf8').split('\n'))
    if (line.includes(lab.dir)) found.push(`mount ${line}`);
  for (const line of sh('ps -eo pid,args').split('\n'))
    if (line.includes(`${lab.dir}/`)) found.push(`process ${line.trim()}`);
  for (const line of sh('iptables -S').split('\n'))
    if (line.includes(lab.bridge)) found.push(`iptables ${line}`);
  const hierarchies = readdirSync('/sys/fs/cgroup', { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => `/sys/fs/cgroup/${e.name}`);
  for (const root of ['/sys/fs/cgroup', ...hierarchies])
    for (const cg of readdirSync(root).filter((x) => x.startsWith(base)))
      found.push(`cgroup ${root}/${cg}`);
  return found;
}

describe('lab: simulated machines on one host', function () {
  this.timeout(120_000);
  // Named by pid, so two test runs on one machine do not tear down each other's lab.
  const name = `lt${process.pid}`;
  const subnet = `10.78.${process.pid % 256}.0/24`;
  let lab: Lab | undefined;

  before(async function () {
    await requireLab(this);
    const t0 = Date.now();
    lab = await Lab.create({ name, hosts: 2, subnet });
    console.log(`      (lab with 2 hosts up in ${Date.now() - t0} ms)`);
  });

  after(async () => {
    await lab?.destroy();
  });

  it('gives every machine its own dockerd with the test images', async () => {
    for (const h of lab!.hosts) {
      const tags = (await h.docker.listImages()).flatMap((i) => i.RepoTags ?? []);
      assert.ok(tags.includes(TEST_IMAGE), `${h.name} has ${tags.join(', ')}`);
      const info = (await h.docker.info()) as { DockerRootDir: string };
      assert.equal(info.DockerRootDir, `${lab!.dir}/${h.name}/data`);
    }
  });

  it('puts each machine on the lab LAN with eth0 and a default route', async () => {
    for (const h of lab!.hosts) {
      const addrs = await h.exec(['ip', '-o', '-4', 'addr', 'show']);
      assert.equal(addrs.code, 0, addrs.stderr);
      assert.match(addrs.stdout, new RegExp(`eth0\\s+inet ${h.address.replace(/\./g, '\\.')}/24`));
      const route = await h.exec(['ip', 'route', 'show', 'default']);
      assert.match(route.stdout, new RegExp(`via ${lab!.gateway} dev eth0`));
      const fwd = await h.exec(['sysctl', '-n', 'net.ipv4.ip_forward']);
      assert.equal(fwd.stdout.trim(), '1');
    }
  });

  it('lets machine 0 reach a server on machine 1, and the host reach both', async () => {
    const [h0, h1] = lab!.hosts;
    await serve(h1, 8080, 'hello-from-h1');
    const r = await runContainer(h0.docker, [
      'timeout',
      '10',
      'wget',
      '-q',
      '-O-',
      `http://${h1.address}:8080/index.html`,
    ]);
    assert.equal(r.code, 0, r.output);
    assert.match(r.output, /hello-from-h1/);
    // A host-network container on h1 listens in h1's namespace, not on h0's.
    const local = await runContainer(h0.docker, [
      'timeout',
      '4',
      'wget',
      '-q',
      '-O-',
      'http://127.0.0.1:8080/index.html',
    ]);
    assert.notEqual(local.code, 0, local.output);
    assert.match(await tcpGet(h1.address, 8080), /hello-from-h1/);
    const ping = await runContainer(h1.docker, ['ping', '-c', '1', '-W', '2', h0.address]);
    assert.equal(ping.code, 0, ping.output);
  });

  it("gives bridged containers addresses in their machine's docker0 range", async () => {
    const h1 = lab!.hosts[1];
    const c = await h1.docker.createContainer({ Image: TEST_IMAGE, Cmd: ['sleep', '60'] });
    await c.start();
    const ip = (await c.inspect()).NetworkSettings.Networks.bridge.IPAddress;
    assert.equal(h1.bip, '172.30.1.1/24');
    assert.match(ip, /^172\.30\.1\.\d+$/);
    // It goes out through h1's eth0 (masqueraded by h1's dockerd) to machine 0.
    const r = await h1.docker
      .getContainer(c.id)
      .exec({ Cmd: ['ping', '-c', '1', '-W', '2', lab!.hosts[0].address], AttachStdout: true });
    const stream = await r.start({});
    await new Promise((res) => stream.on('end', res).resume());
    assert.equal((await r.inspect()).ExitCode, 0);
  });

  it('leaves nothing behind on destroy, and destroy twice is fine', async () => {
    const l = lab!;
    lab = undefined;
    await l.destroy();
    assert.deepEqual(leftovers(l), []);
    await l.destroy();
  });

  it('create() clears what a run that never cleaned up left', async () => {
    const crashed = await Lab.create({ name, hosts: 2, subnet });
    // No destroy(): the next create() with the same name must cope.
    const t0 = Date.now();
    lab = await Lab.create({ name, hosts: 1, subnet });
    console.log(`      (lab with 1 host over a stale one up in ${Date.now() - t0} ms)`);
    assert.equal((await lab.hosts[0].docker.listImages()).length >= 2, true);
    await lab.destroy();
    assert.deepEqual(leftovers(crashed), []);
    lab = undefined;
  });

  it('create() sweeps a lab whose test process was killed, containers and all', async () => {
    const orphanName = `lc${process.pid}`;
    // A container that outlives its creator: a bridged one, in a netns of its own.
    const script = `require(${JSON.stringify(join(__dirname, '../support/lab.js'))})
      .Lab.create({ name: '${orphanName}', hosts: 1, subnet: '10.79.${process.pid % 256}.0/24' })
      .then((lab) => lab.hosts[0].docker.createContainer({ Image: '${TEST_IMAGE}', Cmd: ['sleep', '6061'] }))
      .then((c) => c.start())
      .then(() => console.log('up'), (e) => { console.error(e); process.exit(1); });`;
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => d.toString().includes('up') && resolve());
      child.once('exit', (code) => reject(new Error(`lab creator exited with ${code}`)));
    });
    child.kill('SIGKILL'); // its dockerd, container, namespace and bridge stay behind
    await new Promise((r) => child.once('exit', r));
    const orphan = {
      name: orphanName,
      dir: `/tmp/baton-lab-${orphanName}`,
      bridge: `${orphanName}br`,
    };
    const sleeper = () => execFileSync('ps', ['-eo', 'args']).toString().includes('sleep 6061');
    assert.notDeepEqual(leftovers(orphan), []);
    assert.ok(sleeper());
    lab = await Lab.create({ name, hosts: 1, subnet });
    assert.deepEqual(leftovers(orphan), []);
    assert.ok(!sleeper(), 'the orphaned container still runs');
  });
});
