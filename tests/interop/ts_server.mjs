// An MCP server with the todo tools and no auth of its own (the official
// TypeScript SDK v1: McpServer, streamable HTTP with sessions), for
// guard_proxy to protect. Usage: node ts_server.mjs PORT EXECUTED_LOG
// Every tool it executes is appended to EXECUTED_LOG as a JSON line.
import http from 'node:http';
import { appendFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { z } from 'zod';

const [port, log] = process.argv.slice(2);
const todos = [];
const executed = (tool, args) => appendFileSync(log, `${JSON.stringify({ tool, arguments: args })}\n`);
const header = (extra, name) => extra?.requestInfo?.headers?.[name] ?? null;
const text = (value) => ({ content: [{ type: 'text', text: JSON.stringify(value) }] });

function newServer() {
  const server = new McpServer({ name: 'ts-todo', version: '1.0.0' });
  server.registerTool('whoami', { description: 'Who is calling, as the proxy says' }, async (extra) => {
    executed('whoami', {});
    return text({
      sub: header(extra, 'x-mcp-subject'),
      client_id: header(extra, 'x-mcp-client-id'),
      scopes: (header(extra, 'x-mcp-scopes') ?? '').split(' ').filter(Boolean),
      authorization_forwarded: header(extra, 'authorization') !== null,
    });
  });
  server.registerTool('list_todos', { description: 'List the to-do items' }, async () => {
    executed('list_todos', {});
    return text(todos);
  });
  server.registerTool('add_todo', { description: 'Add a to-do item', inputSchema: { title: z.string() } }, async ({ title }, extra) => {
    executed('add_todo', { title });
    const todo = { id: todos.length + 1, title, owner: header(extra, 'x-mcp-subject') };
    todos.push(todo);
    return text(todo);
  });
  server.registerTool('delete_todo', { description: 'Delete one of your to-do items', inputSchema: { id: z.number() } }, async ({ id }, extra) => {
    executed('delete_todo', { id });
    const owner = header(extra, 'x-mcp-subject');
    const i = todos.findIndex((t) => t.id === id && t.owner === owner);
    if (i >= 0) todos.splice(i, 1);
    return text({ deleted: i >= 0 });
  });
  return server;
}

const transports = new Map();

async function readJson(req) {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const raw = Buffer.concat(chunks).toString();
  return raw ? JSON.parse(raw) : undefined;
}

http.createServer(async (req, res) => {
  try {
    const sessionId = req.headers['mcp-session-id'];
    const body = req.method === 'POST' ? await readJson(req) : undefined;
    let transport = sessionId ? transports.get(sessionId) : undefined;
    if (!transport && req.method === 'POST' && isInitializeRequest(body)) {
      transport = new StreamableHTTPServerTransport({
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => transports.set(id, transport),
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
  } catch (e) {
    res.writeHead(400, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ jsonrpc: '2.0', id: null, error: { code: -32700, message: String(e.message ?? e) } }));
  }
}).listen(Number(port), '127.0.0.1', () => console.log(`ts-todo listening on ${port}`));
