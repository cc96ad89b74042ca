/**
 * Everything the leader runs, in one list: the dispatcher's routing, the
 * scheduler and every controller, all under the leader's context.
 */
import type { Dispatcher } from '../dispatcher';
import type { LeaderLoop } from '../leader';
import { Scheduler } from '../scheduler/scheduler';
import { CronJobController } from './cron-job';
import { DeploymentController } from './deployment/controller';
import { EndpointsController } from './endpoints';
import { JobController } from './job';
import { NodeIpamController } from './node-ipam';
import { NodeLifecycleController } from './node-lifecycle';
import { ReplicaSetController } from './replica-set';
import { ControllerContext } from './runtime/controller';

export function leaderLoops(ctx: ControllerContext, dispatcher: Dispatcher): LeaderLoop[] {
  return [
    dispatcher.loop(ctx),
    new Scheduler(ctx),
    new DeploymentController(ctx),
    new ReplicaSetController(ctx),
    new NodeLifecycleController(ctx),
    new NodeIpamController(ctx),
    new EndpointsController(ctx),
    new JobController(ctx),
    new CronJobController(ctx),
  ];
}
