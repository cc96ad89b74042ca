import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { ClusterClient, ClusterService, VersionResponse } from '../../src/gen/api';
import { EntryType, Message, MessageType } from '../../src/gen/raft';

describe('typed gRPC over the generated code', () => {
  let server: grpc.Server;
  let client: ClusterClient;

  before(async () => {
    server = new grpc.Server();
    server.addService(ClusterService, {
      version: (
        _call: grpc.ServerUnaryCall<unknown, VersionResponse>,
        cb: grpc.sendUnaryData<VersionResponse>,
      ) => cb(null, { version: '1.2.3', nodeName: 'master-1', features: [] }),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    client = new ClusterClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  after(() => {
    client.close();
    server.forceShutdown();
  });

  it('answers a unary call with a typed response', async () => {
    const res = await new Promise<VersionResponse>((resolve, reject) =>
      client.version({}, (err, r) => (err ? reject(err) : resolve(r))),
    );
    assert.deepEqual(res, { version: '1.2.3', nodeName: 'master-1', features: [] });
  });

  it('round-trips a raft message with nested entries and bytes through the wire format', () => {
    const msg = Message.fromPartial({
      type: MessageType.MSG_APP,
      to: 2,
      from: 1,
      term: 7,
      logTerm: 6,
      index: 41,
      commit: 40,
      entries: [
        { term: 7, index: 42, type: EntryType.ENTRY_NORMAL, data: Buffer.from('put a=1') },
        { term: 7, index: 43, type: EntryType.ENTRY_CONF_CHANGE, data: Buffer.alloc(0) },
      ],
    });
    const decoded = Message.decode(Message.encode(msg).finish());
    assert.deepEqual(decoded, msg);
    assert.equal(Buffer.from(decoded.entries[0].data).toString(), 'put a=1');
  });
});
