/**
 * Security contexts, for containers and for whole pods. Baton accepts them
 * so manifests load unchanged, but runs every container with Docker's
 * defaults; a non-empty one is reported as a warning (`unimplemented.ts`).
 */
import { z } from 'zod';
import { nonNegInt } from './fields';

export const seLinuxOptions = () =>
  z.strictObject({
    user: z.string().optional(),
    role: z.string().optional(),
    type: z.string().optional(),
    level: z.string().optional(),
  });
export const seccompProfile = () =>
  z.strictObject({
    type: z.enum(['RuntimeDefault', 'Unconfined', 'Localhost']),
    localhostProfile: z.string().optional(),
  });
export const appArmorProfile = () =>
  z.strictObject({
    type: z.enum(['RuntimeDefault', 'Unconfined', 'Localhost']),
    localhostProfile: z.string().optional(),
  });
export const windowsOptions = () =>
  z.strictObject({
    gmsaCredentialSpecName: z.string().optional(),
    gmsaCredentialSpec: z.string().optional(),
    runAsUserName: z.string().optional(),
    hostProcess: z.boolean().optional(),
  });

export const securityContext = () =>
  z.strictObject({
    privileged: z.boolean().optional(),
    runAsUser: nonNegInt().optional(),
    runAsGroup: nonNegInt().optional(),
    runAsNonRoot: z.boolean().optional(),
    readOnlyRootFilesystem: z.boolean().optional(),
    allowPrivilegeEscalation: z.boolean().optional(),
    capabilities: z
      .strictObject({ add: z.array(z.string()).optional(), drop: z.array(z.string()).optional() })
      .optional(),
    procMount: z.enum(['Default', 'Unmasked']).optional(),
    seLinuxOptions: seLinuxOptions().optional(),
    seccompProfile: seccompProfile().optional(),
    appArmorProfile: appArmorProfile().optional(),
    windowsOptions: windowsOptions().optional(),
  });

export const podSecurityContext = () =>
  z.strictObject({
    runAsUser: nonNegInt().optional(),
    runAsGroup: nonNegInt().optional(),
    runAsNonRoot: z.boolean().optional(),
    fsGroup: nonNegInt().optional(),
    fsGroupChangePolicy: z.enum(['OnRootMismatch', 'Always']).optional(),
    supplementalGroups: z.array(nonNegInt()).optional(),
    supplementalGroupsPolicy: z.enum(['Merge', 'Strict']).optional(),
    sysctls: z.array(z.strictObject({ name: z.string(), value: z.string() })).optional(),
    seLinuxOptions: seLinuxOptions().optional(),
    seLinuxChangePolicy: z.enum(['Recursive', 'MountOption']).optional(),
    seccompProfile: seccompProfile().optional(),
    appArmorProfile: appArmorProfile().optional(),
    windowsOptions: windowsOptions().optional(),
  });
