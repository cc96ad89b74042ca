/**
 * What a person sees in a terminal: `get -w` and `rollout status` run in a
 * real pseudo-terminal (tmux) against a cluster made by `baton up` (one
 * master, one node, exec runtime: no Docker needed), and the screen is
 * read back as tmux rendered it.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { localClusterBusy, UpCluster } from '../support/cli';
import { TmuxSession, tmuxMissing } from '../support/tmux';
import { until } from '../support/until';

const deployment = (replicas: number, version: string) => `apiVersion: apps/v1
kind: Deployment
metadata: { name: ticker }
spec:
  replicas: ${replicas}
  selector: { matchLabels: { app: ticker } }
  template:
    metadata: { labels: { app: ticker } }
    spec:
      containers:
        - name: ticker
          image: baton/busybox
          command: [sh, -c, "sleep 3600"]
          env: [{ name: VERSION, value: "${version}" }]
          readinessProbe: { exec: { command: ["true"] }, periodSeconds: 1 }
`;

/** Column offsets of the header's words: where each column starts on screen. */
function columnStarts(header: string): number[] {
  return [...header.matchAll(/\S+/g)].map((m) => m.index);
}

describe('cli in a terminal: get -w and rollout status (tmux)', function () {
  this.timeout(180_000);
  const missing = tmuxMissing() ?? localClusterBusy();
  let dir: string;
  let c: UpCluster;
  const sessions: TmuxSession[] = [];

  before(async function () {
    if (missing) {
      console.log(`      pending: ${missing}`);
      return this.skip();
    }
    dir = mkdtempSync(join(tmpdir(), 'baton-tty-'));
    c = new UpCluster(dir);
    await c.ok(['up', '--masters', '1', '--nodes', '1', '--runtime', 'exec']);
  });
  after(async () => {
    for (const s of sessions) s.kill();
    await c?.destroy();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('get pods -w: one header, then a row per change, every row aligned under it', async () => {
    const watch = new TmuxSession(c.commandLine(['get', 'pods', '-w']), c.env());
    sessions.push(watch);
    // An empty namespace: the watch prints nothing until the first pod (kubectl too).
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(watch.screen(), '');
    writeFileSync(join(dir, 'ticker.yaml'), deployment(2, 'v1'));
    await c.ok(['apply', '-f', join(dir, 'ticker.yaml')]);
    await until(
      'two Running rows',
      () => (watch.screen().match(/^ticker-\S+\s+1\/1\s+Running/gm) ?? []).length >= 2,
      60_000,
    );
    const lines = watch.output().split('\n');
    const headers = lines.filter((l) => l.startsWith('NAME'));
    assert.equal(headers.length, 1, watch.screen());
    assert.match(headers[0], /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
    const starts = columnStarts(headers[0]);
    const rows = lines.filter((l) => l.startsWith('ticker-'));
    assert.ok(rows.length >= 2, watch.screen());
    for (const row of rows) {
      // Each cell begins where its header does (kubectl's tabwriter layout).
      for (const s of starts.slice(1)) assert.notEqual(row[s - 1], undefined, row);
      assert.match(row.slice(starts[1]), /^\d\/\d\s/, `READY column misaligned: ${row}`);
      assert.match(
        row.slice(starts[2]),
        /^[A-Z][A-Za-z:/0-9]+\s/,
        `STATUS column misaligned: ${row}`,
      );
    }
    // Colours reach a terminal: the STATUS cells are painted, the rest is not.
    assert.ok(watch.screenWithColours().includes('\u001b['), 'no colours on a terminal');
    watch.sendKeys('C-c');
    await until('the watch to end', () => watch.exitStatus() !== undefined, 10_000);
  });

  it('rollout status: each new progress line once, in order, then success and exit 0', async () => {
    writeFileSync(join(dir, 'ticker.yaml'), deployment(3, 'v2'));
    await c.ok(['apply', '-f', join(dir, 'ticker.yaml')]);
    // Until the controller has written a status for the new generation, rollout status says
    // "Waiting for deployment spec update to be observed..." (src/api/rollout.ts), which is
    // not a "rollout to finish" line: start it once the apply has been observed.
    await until('the new generation observed', async () => {
      const d = JSON.parse(await c.ok(['get', 'deploy', 'ticker', '-o', 'json'])) as {
        metadata: { generation?: number };
        status?: { observedGeneration?: number };
      };
      return (d.status?.observedGeneration ?? 0) >= (d.metadata.generation ?? 0);
    });
    const rollout = new TmuxSession(c.commandLine(['rollout', 'status', 'deploy/ticker']), c.env());
    sessions.push(rollout);
    await until('rollout status to end', () => rollout.exitStatus() !== undefined, 90_000);
    const screen = rollout.output();
    assert.equal(rollout.exitStatus(), 0, screen);
    const lines = screen.split('\n').filter((l) => l.trim() !== '');
    assert.match(lines[lines.length - 1], /^deployment "ticker" successfully rolled out$/);
    for (const l of lines.slice(0, -1))
      assert.match(l, /^Waiting for deployment "ticker" rollout to finish: /, screen);
    for (let i = 1; i < lines.length; i++)
      assert.notEqual(lines[i], lines[i - 1], `a line repeated:\n${screen}`);
    // Machine output stays plain: no colour codes when not on a terminal.
    const piped = await c.ok(['get', 'pods']);
    assert.ok(!piped.includes('\u001b['), 'colour codes in piped output');
  });

  it('rollout status of a rollout that cannot finish exits non-zero with the reason', async () => {
    writeFileSync(
      join(dir, 'stuck.yaml'),
      deployment(1, 'v1')
        .replace(/ticker/g, 'stuck')
        .replace('replicas: 1', 'replicas: 1\n  progressDeadlineSeconds: 3')
        .replace('command: ["true"]', 'command: ["false"]'),
    );
    await c.ok(['apply', '-f', join(dir, 'stuck.yaml')]);
    const rollout = new TmuxSession(c.commandLine(['rollout', 'status', 'deploy/stuck']), c.env());
    sessions.push(rollout);
    await until('rollout status to fail', () => rollout.exitStatus() !== undefined, 60_000);
    assert.notEqual(rollout.exitStatus(), 0, rollout.screen());
    assert.match(rollout.screen(), /exceeded its progress deadline/);
  });
});
