// `minio server DIR [--console-address ADDR]`: S3 on port 9000 from DIR, accepting only the
// MINIO_ROOT_USER / MINIO_ROOT_PASSWORD key pair (SigV4 signatures are checked). No console.
'use strict';
const S3rver = require('s3rver');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');

const args = process.argv.slice(2);
if (args[0] !== 'server' || !args[1]) {
  console.error('usage: minio server DIR [--console-address ADDR]');
  process.exit(2);
}
const user = process.env.MINIO_ROOT_USER || 'minioadmin';
const password = process.env.MINIO_ROOT_PASSWORD || 'minioadmin';
// s3rver's built-in key pair would let anyone in who knows it: replace it.
DUMMY_ACCOUNT.revokeAccessKey('S3RVER');
DUMMY_ACCOUNT.createKeyPair(user, password);

// Path-style addressing only, as MinIO by default: s3rver would otherwise read the host name
// (`minio` on the compose network) as a bucket name.
const server = new S3rver({
  address: '0.0.0.0',
  port: 9000,
  directory: args[1],
  silent: true,
  vhostBuckets: false,
});
server.run().then(() => console.log(`S3 (s3rver) on :9000, data in ${args[1]}`));
const stop = () => server.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
