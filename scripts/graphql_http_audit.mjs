// The graphql-http package's GraphQL-over-HTTP server audits against a running /graphql.
// One audit at a time: run all at once, they trip the per-client concurrency limit (429).
//   npm install --prefix /tmp/gh graphql-http graphql
//   NODE_PATH=/tmp/gh/node_modules node scripts/graphql_http_audit.mjs http://127.0.0.1:8000/graphql
import { createRequire } from 'node:module';
const require = createRequire(process.env.NODE_PATH ? process.env.NODE_PATH + '/' : import.meta.url);
const { serverAudits } = require('graphql-http');
const audits = serverAudits({ url: process.argv[2] || 'http://127.0.0.1:8000/graphql' });
let ok = 0;
for (const audit of audits) {
  const result = await audit.fn();
  if (result.status === 'ok') ok += 1;
  else console.log(result.status, result.id, result.name, '::', result.reason);
}
console.log(`graphql_http_audit total=${audits.length} ok=${ok}`);
