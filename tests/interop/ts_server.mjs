// An MCP server with no auth of its own (the official TypeScript SDK v1:
// McpServer, streamable HTTP with sessions), for guard_proxy to protect.
// Usage: node ts_server.mjs PORT EXECUTED_LOG [http|express]
//   http:    plain node:http, the raw body read and JSON.parse'd here;
//   express: the SDK's own createMcpExpressApp() (express.json(), which
//            decodes any charset the Content-Type names).
// Every tool, resource and prompt it executes is appended to EXECUTED_LOG
// as a JSON line: {tool|resource|prompt, arguments, session, owner,
// subject}: what ran, in which session, whose session that is (the subject
// that initialized it), and for whom (the proxy's identity header).
import http from 'node:http';
import { appendFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createMcpExpressApp } from '@modelcontextprotocol/sdk/server/express.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const [port, log, mode = 'http'] = process.argv.slice(2);
const todos = [];
/** Session id -> the subject whose initialize created it. */
const owners = new Map();
const header = (extra, name) => extra?.requestInfo?.headers?.[name] ?? null;
const executed = (extra, what) => {
  const session = extra?.sessionId ?? null;
  appendFileSync(log, `${JSON.stringify({
    ...what, session, owner: session ? owners.get(session) ?? null : null, subject: header(extra, 'x-mcp-subject'),
  })}\n`);
};
const text = (value) => ({ content: [{ type: 'text', text: JSON.stringify(value) }] });

function newServer() {
  const server = new McpServer({ name: 'ts-todo', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who is calling, as the proxy says' }, async (extra) => {
    executed(extra, { tool: 'whoami', arguments: {} });
    return text({
      sub: header(extra, 'x-mcp-subject'),
      client_id: header(extra, 'x-mcp-client-id'),
      scopes: (header(extra, 'x-mcp-scopes') ?? '').split(' ').filter(Boolean),
      authorization_forwarded: header(extra, 'authorization') !== null,
    });
  });
  server.registerTool('list_todos', { description: 'List the to-do items' }, async (extra) => {
    executed(extra, { tool: 'list_todos', arguments: {} });
    return text(todos);
  });
  server.registerTool('add_todo', { description: 'Add a to-do item', inputSchema: { title: z.string() } }, async ({ title }, extra) => {
    executed(extra, { tool: 'add_todo', arguments: { title } });
    const todo = { id: todos.length + 1, title, owner: header(extra, 'x-mcp-subject') };
    todos.push(todo);
    return text(todo);
  });
  server.registerTool('delete_todo', { description: 'Delete one of your to-do items', inputSchema: { id: z.number() } }, async ({ id }, extra) => {
    executed(extra, { tool: 'delete_todo', arguments: { id } });
    const owner = header(extra, 'x-mcp-subject');
    const i = todos.findIndex((t) => t.id === id && t.owner === owner);
    if (i >= 0) todos.splice(i, 1);
    return text({ deleted: i >= 0 });
  });
  // Resources: a public and a secret one, and a template for each space.
  for (const space of ['public', 'secret']) {
    server.registerResource(`${space}-a`, `file:///${space}/a`, {}, async (uri, extra) => {
      executed(extra, { resource: `file:///${space}/a` });
      return { contents: [{ uri: uri.href, text: `${space} a` }] };
    });
    server.registerResource(`${space}-any`, new ResourceTemplate(`file:///${space}/{name}`, { list: undefined }), {}, async (uri, { name }, extra) => {
      executed(extra, { resource: `file:///${space}/${name}` });
      return { contents: [{ uri: uri.href, text: `${space} ${name}` }] };
    });
  }
  server.registerPrompt('hello', { description: 'A greeting' }, async (extra) => {
    executed(extra, { prompt: 'hello' });
    return { messages: [{ role: 'user', content: { type: 'text', text: 'hello' } }] };
  });
  server.registerPrompt('secret_prompt', { description: 'Secret' }, async (extra) => {
    executed(extra, { prompt: 'secret_prompt' });
    return { messages: [{ role: 'user', content: { type: 'text', text: 'secret' } }] };
  });
  return server;
}

const transports = new Map();

/** One MCP request, its body already parsed (or undefined for GET/DELETE). */
async function handle(req, res, body) {
  const sessionId = req.headers['mcp-session-id'];
  let transport = sessionId ? transports.get(sessionId) : undefined;
  if (!transport && req.method === 'POST' && isInitializeRequest(body)) {
    const subject = req.headers['x-mcp-subject'] ?? null;
    transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
        owners.set(id, subject);
      },
    });
    transport.onclose = () => transport.sessionId && transports.delete(transport.sessionId);
    await newServer().connect(transport);
  }
  if (!transport) {
    res.writeHead(sessionId ? 404 : 400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32000, message: 'no valid session' } }));
    return;
  }
  await transport.handleRequest(req, res, body);
}

if (mode === 'express') {
  const app = createMcpExpressApp();
  app.all('/mcp', async (req, res) => {
    try {
      await handle(req, res, req.method === 'POST' ? req.body : undefined);
    } catch (e) {
      if (!res.headersSent) res.status(400).json({ jsonrpc: '2.0', id: null, error: { code: -32700, message: String(e.message ?? e) } });
    }
  });
  app.listen(Number(port), '127.0.0.1', () => console.log(`ts-todo (express) listening on ${port}`));
} else {
  const readJson = async (req) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks).toString();
    return raw ? JSON.parse(raw) : undefined;
  };
  http.createServer(async (req, res) => {
    try {
      await handle(req, res, req.method === 'POST' ? await readJson(req) : undefined);
    } catch (e) {
      if (!res.headersSent) {
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: String(e.message ?? e) } }));
      }
    }
  }).listen(Number(port), '127.0.0.1', () => console.log(`ts-todo listening on ${port}`));
}
