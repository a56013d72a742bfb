// The three `mc` commands compose uses: `alias set NAME URL USER PASSWORD`,
// `mb [--ignore-existing] NAME/BUCKET` and `ready NAME` (the alias `local` is
// http://127.0.0.1:9000 with MINIO_ROOT_USER / MINIO_ROOT_PASSWORD, as in the minio image).
'use strict';
const fs = require('fs');
const http = require('http');
const os = require('os');
const path = require('path');
const aws4 = require('aws4');

const configFile = path.join(os.homedir(), '.mc-standin.json');
const readAliases = () => (fs.existsSync(configFile) ? JSON.parse(fs.readFileSync(configFile)) : {});

function alias(name) {
  const aliases = readAliases();
  if (aliases[name]) return aliases[name];
  if (name === 'local') {
    return {
      url: 'http://127.0.0.1:9000',
      user: process.env.MINIO_ROOT_USER || 'minioadmin',
      password: process.env.MINIO_ROOT_PASSWORD || 'minioadmin',
    };
  }
  fail(`unknown alias ${name}`);
}

function fail(message) {
  console.error(`mc: ${message}`);
  process.exit(1);
}

function request(target, method, pathname) {
  const url = new URL(target.url);
  const opts = aws4.sign(
    { host: url.hostname, port: url.port, method, path: pathname, service: 's3', region: 'us-east-1' },
    { accessKeyId: target.user, secretAccessKey: target.password },
  );
  return new Promise((resolve, reject) => {
    const req = http.request({ ...opts, timeout: 5000 }, (res) => {
      let body = '';
      res.on('data', (chunk) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function main(argv) {
  const [cmd, ...rest] = argv;
  if (cmd === 'alias' && rest[0] === 'set' && rest.length === 5) {
    const [, name, url, user, password] = rest;
    fs.writeFileSync(configFile, JSON.stringify({ ...readAliases(), [name]: { url, user, password } }));
    console.log(`Added \`${name}\` successfully.`);
  } else if (cmd === 'mb') {
    const ignore = rest.includes('--ignore-existing');
    const spec = rest.find((a) => !a.startsWith('--'));
    const [name, bucket] = (spec || '').split('/');
    if (!bucket) fail('usage: mc mb [--ignore-existing] ALIAS/BUCKET');
    const res = await request(alias(name), 'PUT', `/${bucket}`);
    if (res.status === 200) console.log(`Bucket created successfully \`${spec}\`.`);
    else if (res.status === 409 && ignore) console.log(`Bucket \`${spec}\` already exists.`);
    else fail(`creating ${spec}: HTTP ${res.status} ${res.body}`);
  } else if (cmd === 'ready' && rest.length === 1) {
    // Ready = answers a signed ListBuckets with 200.
    const res = await request(alias(rest[0]), 'GET', '/');
    if (res.status !== 200) fail(`not ready: HTTP ${res.status}`);
    console.log(`The cluster '${rest[0]}' is ready`);
  } else {
    fail(`this stand-in knows only 'alias set', 'mb' and 'ready' (got: ${argv.join(' ')})`);
  }
}

main(process.argv.slice(2)).catch((err) => fail(err.message));
