import Docker from 'dockerode';

/** The busybox image pods run in tests and labs (`npm run images` builds it). */
export const TEST_IMAGE = 'baton/busybox:latest';
/** The image of every pod's sandbox container. */
export const PAUSE_IMAGE = 'baton/pause:latest';

/**
 * Why Docker-backed tests cannot run here, or null when they can: a daemon
 * must answer and the locally built test images must exist.
 */
export async function dockerUnavailableReason(docker = new Docker()): Promise<string | null> {
  try {
    await docker.ping();
  } catch (err) {
    return `no Docker daemon answers (${(err as Error).message.split('\n')[0]})`;
  }
  for (const image of [TEST_IMAGE, PAUSE_IMAGE]) {
    try {
      await docker.getImage(image).inspect();
    } catch {
      return `test image ${image} is missing (run "npm run images")`;
    }
  }
  return null;
}
