/**
 * `baton cluster`: the masters as a Raft group. `status` and `members` read
 * the membership (from the leader when it answers); `remove-member` takes a
 * master out of it for good.
 */
import { Command } from 'commander';
import { ClusterStatusResponse } from '../../gen/api';
import { CliError, out, withClient } from '../output';
import { renderTable } from '../printers';

function health(s: ClusterStatusResponse, m: ClusterStatusResponse['members'][number]): string {
  return !s.fromLeader ? 'unknown' : m.healthy ? 'healthy' : 'unreachable';
}

function statusCommand(): Command {
  return new Command('status')
    .description("show the masters, the leader, the term and each member's health")
    .option('-o, --output <format>', 'json for machine output')
    .action(async (opts: { output?: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const s = await client.status();
        if (opts.output === 'json') return out(JSON.stringify(s, null, 2));
        out(
          `leader: ${s.leader ? `master ${s.leader} (${s.leaderAddress})` : 'none'}   term: ${s.term}   commit: ${s.commitIndex}   objects: ${s.objects}`,
        );
        out(
          renderTable(
            ['ID', 'ADDRESS', 'ROLE', 'HEALTH', 'MATCH', 'REPLICATION'],
            s.members.map((m) => [
              String(m.id),
              m.address,
              m.leader ? 'leader' : m.voter ? 'follower' : 'learner',
              health(s, m),
              String(m.matchIndex),
              m.replication.toLowerCase(),
            ]),
          ),
        );
      });
    });
}

/** The members table: one line per master, as `baton cluster members` prints it. */
export function membersTable(s: ClusterStatusResponse): string {
  return renderTable(
    ['ID', 'ADDRESS', 'ROLE', 'LEADER', 'HEALTHY', 'MATCH'],
    s.members.map((m) => [
      String(m.id),
      m.address,
      m.voter ? 'voter' : 'learner',
      m.leader ? 'yes' : 'no',
      !s.fromLeader ? 'unknown' : m.healthy ? 'yes' : 'no',
      s.fromLeader ? String(m.matchIndex) : '-',
    ]),
  );
}

function membersCommand(): Command {
  return new Command('members')
    .description(
      'list the masters: Raft role, leader, health and replication as the leader sees them',
    )
    .option('-o, --output <format>', 'json for machine output')
    .action(async (opts: { output?: string }, cmd: Command) => {
      await withClient(cmd, async (client) => {
        const s = await client.status();
        if (opts.output === 'json') return out(JSON.stringify(s.members, null, 2));
        out(membersTable(s));
      });
    });
}

function removeMemberCommand(): Command {
  return new Command('remove-member')
    .description(
      'remove a master from the cluster for good (the leader hands leadership over first); the removed master stops',
    )
    .argument('<id>', "the master's Raft id (see baton cluster members)")
    .action(async (idArg: string, _opts: unknown, cmd: Command) => {
      if (!/^[1-9]\d*$/.test(idArg))
        throw new CliError(`master id must be a positive integer, not "${idArg}"`);
      const id = Number(idArg);
      await withClient(cmd, async (client) => {
        const s = await client.removeMember(id);
        out(`master ${id} removed`);
        out(membersTable(s));
      });
    });
}

export function clusterCommand(): Command {
  return new Command('cluster')
    .description('the masters: membership, leader, health')
    .addCommand(statusCommand())
    .addCommand(membersCommand())
    .addCommand(removeMemberCommand());
}
