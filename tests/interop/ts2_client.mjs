// The MCP TypeScript SDK v2 (`@modelcontextprotocol/client`) as a
// client-credentials client of the todo server: discovery from the server
// URL, tools/list, whoami, then add_todo, which needs a step-up from the
// first token's todo:read.
import { Client, ClientCredentialsProvider, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';

const text = (result) => JSON.parse(result.content[0].text);

export async function ts2Flow(url, clientId, clientSecret, issuer) {
  const provider = new ClientCredentialsProvider({
    clientId,
    clientSecret,
    expectedIssuer: issuer,
    scope: 'todo:read',
  });
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  const client = new Client({ name: 'interop-ts-v2', version: '1.0.0' });
  await client.connect(transport);
  try {
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    const whoami = text(await client.callTool({ name: 'whoami', arguments: {} }));
    let add;
    try {
      add = text(await client.callTool({ name: 'add_todo', arguments: { title: 'from typescript v2' } }));
    } catch (e) {
      add = { error: String(e) };
    }
    const whoamiAfter = text(await client.callTool({ name: 'whoami', arguments: {} }));
    const version = transport.protocolVersion ?? client.getNegotiatedProtocolVersion?.() ?? null;
    return { tools, whoami, add_todo: add, whoami_after: whoamiAfter, version };
  } finally {
    await client.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [url, id, secret, issuer] = process.argv.slice(2);
  console.log(JSON.stringify(await ts2Flow(url, id, secret, issuer)));
}
