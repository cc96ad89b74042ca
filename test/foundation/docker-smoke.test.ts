import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { requireDocker, TEST_IMAGE } from '../support/docker';

describe('docker smoke (dockerode against the local engine)', function () {
  this.timeout(60_000);
  const docker = new Docker();

  before(async function () {
    await requireDocker(this);
  });

  it('starts a container from the local test image, reads its output, and removes it', async () => {
    const name = `baton-smoke-${process.pid}-${Date.now()}`;
    const container = await docker.createContainer({
      Image: TEST_IMAGE,
      name,
      Cmd: ['sh', '-c', 'echo hello-from-$(hostname); exit 7'],
      Hostname: 'smoke',
      Labels: { 'baton.test': 'smoke' },
    });
    try {
      await container.start();
      const result = (await container.wait()) as { StatusCode: number };
      assert.equal(result.StatusCode, 7);
      const logs = await container.logs({ stdout: true, stderr: false });
      // Docker multiplexes stdout/stderr with an 8-byte header per frame.
      assert.match(logs.toString('latin1'), /hello-from-smoke/);
    } finally {
      await container.remove({ force: true });
    }
    const left = await docker.listContainers({ all: true, filters: { name: [name] } });
    assert.equal(left.length, 0);
  });
});
