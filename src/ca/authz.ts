/**
 * Who may call what. Every RPC of every Baton server is listed here with the
 * roles allowed to call it; a method missing from the table is refused, so a
 * new RPC cannot ship open by accident. Finer rules that depend on the
 * request (a node reads only what its own pods use; the read-only role sees
 * no Secrets) are checked by the handlers with `callerOf(call)`.
 */
import * as grpc from '@grpc/grpc-js';
import { Identity, identityOfSubject, Role, ROLES } from './pki';

const ALL: readonly Role[] = ROLES;
const READERS: readonly Role[] = ['master', 'admin', 'readonly'];
const WRITERS: readonly Role[] = ['master', 'admin'];

/** Methods anyone may call without a certificate: how a newcomer gets one. */
const OPEN = new Set(['/baton.api.Cluster/GetCa', '/baton.api.Cluster/Enroll']);

export const RULES: Readonly<Record<string, readonly Role[]>> = {
  '/baton.api.Cluster/Version': ALL,
  '/baton.api.Cluster/Status': ALL,
  // A node reads its Node object and the Secrets and ConfigMaps its pods use.
  '/baton.api.Cluster/Get': ALL,
  '/baton.api.Cluster/List': READERS,
  '/baton.api.Cluster/Watch': READERS,
  // A node creates Events about its pods.
  '/baton.api.Cluster/Create': ['master', 'admin', 'node'],
  '/baton.api.Cluster/Apply': WRITERS,
  '/baton.api.Cluster/Update': WRITERS,
  '/baton.api.Cluster/Delete': WRITERS,
  '/baton.api.Cluster/Join': WRITERS,
  '/baton.api.Cluster/RemoveMember': WRITERS,
  '/baton.api.Cluster/Logs': READERS,
  '/baton.api.Cluster/Top': READERS,
  '/baton.api.Cluster/Exec': WRITERS,
  // Any valid certificate may be renewed, for the same identity only.
  '/baton.api.Cluster/RenewCertificate': ALL,
  // The session's node name must be the certificate's (checked by the dispatcher).
  '/baton.node.Dispatcher/Session': ['node'],
  '/baton.node.NodeApi/Logs': ['master'],
  '/baton.node.NodeApi/Exec': ['master'],
  '/baton.node.NodeApi/Stats': ['master'],
  '/baton.raft.RaftTransport/Send': ['master'],
  '/baton.raft.RaftTransport/InstallSnapshot': ['master'],
  '/baton.raft.RaftTransport/SnapshotOffset': ['master'],
};

/** Metadata only masters may set (forwarding between masters); dropped from anyone else's calls. */
const MASTER_ONLY_METADATA = /^baton-/;

type Call = { getAuthContext(): { sslPeerCertificate?: { subject: unknown } } | null };

/**
 * The verified identity of the caller, or undefined when the server runs
 * without TLS (then everything is allowed, as before certificates existed)
 * or the caller showed no valid certificate (then the interceptor has
 * already refused every method but the open ones).
 */
export function callerOf(call: Call): Identity | undefined {
  const cert = call.getAuthContext()?.sslPeerCertificate;
  return cert ? identityOfSubject(cert.subject as Record<string, unknown>) : undefined;
}

export type Decision = { ok: true } | { ok: false; code: grpc.status; details: string };

/** The table's answer for one call (pure: the interceptor and the tests share it). */
export function decide(method: string, who: Identity | undefined, cluster: string): Decision {
  if (OPEN.has(method)) return { ok: true };
  if (!who)
    return {
      ok: false,
      code: grpc.status.UNAUTHENTICATED,
      details: `${method}: a client certificate issued by this cluster's CA is required (get one with "baton login --server ADDR --token TOKEN")`,
    };
  if (who.cluster !== cluster)
    return {
      ok: false,
      code: grpc.status.UNAUTHENTICATED,
      details: `${method}: the certificate belongs to cluster ${who.cluster}, not ${cluster}`,
    };
  const allowed = RULES[method];
  if (!allowed)
    return {
      ok: false,
      code: grpc.status.PERMISSION_DENIED,
      details: `${method}: not allowed to anyone`,
    };
  if (!allowed.includes(who.role))
    return {
      ok: false,
      code: grpc.status.PERMISSION_DENIED,
      details: `${method}: ${who.role} "${who.name}" may not call this (allowed: ${allowed.join(', ')})`,
    };
  return { ok: true };
}

/** A server interceptor enforcing the table before any handler runs. */
export function authorizationInterceptor(cluster: string): grpc.ServerInterceptor {
  return (method, call) => {
    const listener = new grpc.ServerListenerBuilder()
      .withOnReceiveMetadata((md, next) => {
        const who = callerOf(call);
        const d = decide(method.path, who, cluster);
        if (!d.ok) {
          call.sendStatus({ code: d.code, details: d.details, metadata: new grpc.Metadata() });
          return;
        }
        if (who?.role !== 'master')
          for (const k of Object.keys(md.getMap())) if (MASTER_ONLY_METADATA.test(k)) md.remove(k);
        next(md);
      })
      .build();
    return new grpc.ServerInterceptingCall(
      call,
      new grpc.ResponderBuilder().withStart((next) => next(listener)).build(),
    );
  };
}
