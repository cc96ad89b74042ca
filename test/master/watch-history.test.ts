import * as grpc from '@grpc/grpc-js';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BatonClient, ClientError } from '../../src/client/cluster-client';
import { EventType } from '../../src/gen/api';
import { Master, startMaster } from '../../src/master/master';
import { freePort } from '../support/raft-kv/processes';

/** A watch from a revision the master no longer keeps must relist, and says so. */
describe('masters: watch history over the API', function () {
  this.timeout(30_000);
  let dir: string;
  let m: Master;
  let client: BatonClient;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'baton-watch-'));
    const address = `127.0.0.1:${await freePort()}`;
    m = await startMaster({
      id: 1,
      listen: address,
      peers: { 1: address },
      dataDir: dir,
      bootstrap: true,
      watchHistory: 5,
    });
    client = new BatonClient([address]);
    while (!m.store.get('Namespace', undefined, 'default'))
      await new Promise((r) => setTimeout(r, 20));
  });
  after(async () => {
    client?.close();
    await m?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers OUT_OF_RANGE ("too old, relist") beyond the kept history, and replays within it', async () => {
    const revs: number[] = [];
    for (let i = 0; i < 10; i++)
      revs.push(
        Number(
          (
            await client.apply(
              JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `c${i}` } }),
            )
          ).revision,
        ),
      );
    await assert.rejects(
      (async () => {
        for await (const ev of client.watch({ kind: 'ConfigMap', fromRevision: revs[0] })) void ev;
      })(),
      (e: Error) =>
        e instanceof ClientError &&
        e.code === grpc.status.OUT_OF_RANGE &&
        /revision \d+ is too old/.test(e.message),
    );
    // From the last few revisions, exactly the later changes come back.
    const ac = new AbortController();
    const seen: string[] = [];
    for await (const ev of client.watch({ kind: 'ConfigMap', fromRevision: revs[7] }, ac.signal)) {
      if (ev.type === EventType.BOOKMARK) continue;
      seen.push((JSON.parse(ev.objectJson) as { metadata: { name: string } }).metadata.name);
      if (seen.length === 2) ac.abort();
    }
    assert.deepEqual(seen, ['c8', 'c9']);
  });
});
