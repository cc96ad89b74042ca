import { dockerUnavailableReason } from '../../deploy/vmlab/images';

export { dockerUnavailableReason, PAUSE_IMAGE, TEST_IMAGE } from '../../deploy/vmlab/images';

/** In a mocha `before`: marks the suite pending, saying why, when Docker is not usable. */
export async function requireDocker(ctx: Mocha.Context): Promise<void> {
  const reason = await dockerUnavailableReason();
  if (reason !== null) {
    console.log(`      pending: ${reason}`);
    ctx.skip();
  }
}
