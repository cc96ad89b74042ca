/** The lab moved to deploy/vmlab/lab.ts (the chaos suite and `deploy/lab` use it too). */
import { labUnavailableReason } from '../../deploy/vmlab/lab';

export * from '../../deploy/vmlab/lab';

/** In a mocha `before`: marks the suite pending, saying why, when the lab cannot run. */
export async function requireLab(ctx: Mocha.Context): Promise<void> {
  const reason = await labUnavailableReason();
  if (reason !== null) {
    console.log(`      pending: ${reason}`);
    ctx.skip();
  }
}
