/**
 * The trailer a master sets on every error it answers a unary call with: its
 * id. A client retrying over several masters tells by it "this master
 * answered" (no leader yet, the leader unreachable from there, ...) from
 * "this master could not be reached", whatever the message says: a follower
 * that cannot reach a dead leader answers with that connection's error, and
 * taking it for the follower being down made clients give up on a cluster
 * still electing a new leader.
 */
export const ANSWERED_BY = 'baton-answered-by';
