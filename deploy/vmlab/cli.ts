/**
 * `deploy/lab up|down|status`: the chaos suite's cluster of VMs (network
 * namespaces on one host), made by hand and left running. Its state lives in
 * /tmp/baton-lab-vmlab (cluster.json, one directory per VM with its logs).
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Command } from 'commander';
import { parse as parseYaml } from 'yaml';
import { clientConfigSchema, clientCredentials } from '../../src/cli/client-config';
import { BatonClient } from '../../src/client/cluster-client';
import { ClusterState, VmCluster } from './cluster';
import { Lab, labUnavailableReason } from './lab';

const NAME = 'vmlab';
const DIR = `/tmp/baton-lab-${NAME}`;
const BATON = join(__dirname, '..', '..', '..', 'bin', 'baton.js');

function state(): ClusterState | undefined {
  return existsSync(join(DIR, 'cluster.json')) ? VmCluster.stateOf(DIR) : undefined;
}

function alive(pid?: number): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function show(s: ClusterState): void {
  const servers = s.masters.map((m) => m.address).join(',');
  console.log(`lab ${s.name} on ${s.subnet} (state in ${DIR})`);
  for (const m of s.masters)
    console.log(
      `  ${m.name}  master ${m.id}  netns ${m.ns}  ${m.address}  ${alive(m.pid) ? `running (pid ${m.pid})` : 'stopped'}  log ${m.log}`,
    );
  for (const n of s.nodes)
    console.log(
      `  ${n.name}  node      netns ${n.ns}  ${n.address}  ${alive(n.pid) ? `running (pid ${n.pid})` : 'stopped'}  log ${n.log}`,
    );
  console.log(`\nmasters: ${servers} (mutual TLS; admin client config ${s.adminConfig})`);
  console.log(`  e.g.  BATON_CONFIG=${s.adminConfig} node ${BATON} get nodes`);
  console.log(`  or    export BATON_CONFIG=${s.adminConfig}; baton get nodes`);
  console.log(`  a shell on a VM: nsenter --net=/var/run/netns/${s.masters[0]?.ns} -- sh`);
}

async function down(): Promise<void> {
  const s = state();
  const lab = Lab.open(NAME, s?.subnet ?? '10.77.250.0/24', s?.hosts ?? 16);
  await lab.destroy();
  console.log(`lab ${NAME} removed (processes, dockerds, namespaces, bridge, mounts, ${DIR})`);
}

const program = new Command('deploy/lab').description(
  'a Baton cluster of VMs (network namespaces) on this host',
);
program
  .command('up')
  .option('--masters <n>', 'master VMs', '3')
  .option('--nodes <n>', 'worker VMs, each with its own dockerd', '2')
  .option('--subnet <cidr>', "the VMs' LAN", '10.77.250.0/24')
  .option(
    '--master-flag <flag...>',
    'extra `baton master` flags, e.g. --master-flag=--node-grace-period-ms=4000',
  )
  .action(async (o: { masters: string; nodes: string; subnet: string; masterFlag?: string[] }) => {
    const why = await labUnavailableReason();
    if (why) throw new Error(why);
    if (state()) {
      console.log(`a lab is up already; "deploy/lab down" first. It is:`);
      show(state()!);
      return;
    }
    const c = await VmCluster.create({
      name: NAME,
      subnet: o.subnet,
      masters: Number(o.masters),
      nodes: Number(o.nodes),
      masterFlags: o.masterFlag ?? [],
      detached: true,
    });
    const client = c.client();
    try {
      const t0 = Date.now();
      for (;;) {
        const nodes = (await client.list({ kind: 'Node' })).itemsJson.map(
          (j) => JSON.parse(j) as { status?: { conditions?: { type: string; status: string }[] } },
        );
        const ready = nodes.filter((n) =>
          n.status?.conditions?.some((x) => x.type === 'Ready' && x.status === 'True'),
        ).length;
        if (ready === c.nodes.length) break;
        if (Date.now() - t0 > 60_000)
          throw new Error(`only ${ready} of ${c.nodes.length} nodes Ready after 60 s`);
        await new Promise((r) => setTimeout(r, 500));
      }
    } finally {
      client.close();
    }
    c.saveState();
    show(state()!);
    // The VMs' processes are detached; nothing here should wait for them.
    process.exit(0);
  });
program.command('down').action(down);
program.command('status').action(async () => {
  const s = state();
  if (!s) {
    console.log(`no lab (nothing in ${DIR}); "deploy/lab up" makes one`);
    return;
  }
  show(s);
  let c: BatonClient;
  try {
    const conf = clientConfigSchema.parse(parseYaml(readFileSync(s.adminConfig, 'utf8')));
    c = new BatonClient(conf.server, {
      timeoutMs: 3000,
      credentials: clientCredentials(conf, s.adminConfig),
    });
  } catch (err) {
    console.log(`\ncannot read the admin config ${s.adminConfig}: ${(err as Error).message}`);
    return;
  }
  try {
    const st = await c.status();
    console.log(`\nleader: master ${st.leader} (term ${st.term}, applied ${st.appliedIndex})`);
  } catch (err) {
    console.log(`\nno answer from the masters: ${(err as Error).message}`);
  } finally {
    c.close();
  }
});

program.parseAsync().catch((err: Error) => {
  console.error(`error: ${err.message}`);
  process.exit(1);
});
