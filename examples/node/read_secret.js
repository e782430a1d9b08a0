#!/usr/bin/env node
// Read the application's secrets from the secret-zero agent, once, at start-up.
// Node.js standard library only: http.request with socketPath.
//
//   SECRET_ZERO_SOCKET=/run/secret-zero/agent.sock node read_secret.js [KEY]
//
// Prints the names of the keys received, never their values (unless KEY is given).
// Exit codes, as `secret-zero get`: 10 refused (403), 11 no delivery left (410),
// 12 agent unreachable or not ready, 1 anything else.
'use strict';

const http = require('node:http');

const DEFAULT_SOCKET = '/run/secret-zero/agent.sock';

class AgentError extends Error {
  constructor(code, message) {
    super(message);
    this.code = code;
  }
}

// GET /v1/secret once; resolves to the document (kept in memory only).
function readSecrets(socket) {
  // '@NAME' is a Linux abstract socket, which Node spells with a leading NUL.
  const socketPath = socket.startsWith('@') ? '\0' + socket.slice(1) : socket;
  return new Promise((resolve, reject) => {
    const req = http.request(
      { socketPath, path: '/v1/secret', method: 'GET', headers: { Host: 'localhost' }, agent: false, timeout: 60000 },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('end', () => {
          const body = Buffer.concat(chunks);
          chunks.forEach((c) => c.fill(0));
          if (res.statusCode === 200) {
            try {
              resolve(JSON.parse(body.toString('utf8')));
            } catch (e) {
              reject(new AgentError(1, 'the document is not JSON'));
            } finally {
              body.fill(0);
            }
            return;
          }
          let message = `HTTP ${res.statusCode}`;
          try {
            const detail = JSON.parse(body.toString('utf8'));
            message = detail.error + (detail.hint ? ` (hint: ${detail.hint})` : '');
          } catch (e) { /* not JSON: keep the status */ }
          if (res.statusCode === 403) reject(new AgentError(10, `refused by the agent (403): ${message}`));
          else if (res.statusCode === 410) reject(new AgentError(11, `no delivery left (410): the secrets were already read: ${message}`));
          else if (res.statusCode === 503) reject(new AgentError(12, `the agent is not ready (503): ${message}`));
          else reject(new AgentError(1, `the agent answered HTTP ${res.statusCode}: ${message}`));
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
    req.on('error', (e) => reject(new AgentError(12, `cannot reach the agent on ${socket}: ${e.message}`)));
    req.end();
  });
}

async function main() {
  const socket = process.env.SECRET_ZERO_SOCKET || DEFAULT_SOCKET;
  let secrets;
  try {
    secrets = await readSecrets(socket);
  } catch (e) {
    console.error(`read_secret.js: ${e.message}`);
    return e.code || 1;
  }
  const keys = Object.keys(secrets).sort();
  console.log(`read_secret.js: received ${keys.length} keys: ${keys.join(', ')}`);
  const name = process.argv[2];
  if (name !== undefined) {
    if (!(name in secrets)) {
      console.error(`read_secret.js: no key ${JSON.stringify(name)} in the document`);
      return 3;
    }
    const value = secrets[name];
    console.log(`${name}=${typeof value === 'string' ? value : JSON.stringify(value)}`);
  }
  // ... start the application with `secrets`, never writing them to disk or the environment.
  return 0;
}

main().then((code) => { process.exitCode = code; });
