// The official MCP TypeScript SDK as a client-credentials client of the todo
// server: discovery from nothing but the server URL, then tools and step-up.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { ClientCredentialsProvider } from '@modelcontextprotocol/sdk/client/auth-extensions.js';

const text = (result) => JSON.parse(result.content[0].text);

/**
 * Connects, lists tools, calls whoami, add_todo, whoami again. SDK v1's
 * client-credentials provider requests its configured `scope` (it does not
 * take the scope a 401/403 challenge names), so it is configured with the
 * scopes add_todo needs.
 */
export async function tsFlow(url, clientId, clientSecret, issuer) {
  const provider = new ClientCredentialsProvider({
    clientId,
    clientSecret,
    expectedIssuer: issuer,
    scope: 'todo:read todo:write',
  });
  const transport = new StreamableHTTPClientTransport(new URL(url), { authProvider: provider });
  const client = new Client({ name: 'interop-ts', version: '1.0.0' });
  await client.connect(transport);
  try {
    const tools = (await client.listTools()).tools.map((t) => t.name).sort();
    const whoami = text(await client.callTool({ name: 'whoami', arguments: {} }));
    const add = text(await client.callTool({ name: 'add_todo', arguments: { title: 'from typescript' } }));
    const whoamiAfter = text(await client.callTool({ name: 'whoami', arguments: {} }));
    const token = provider.tokens()?.access_token ?? '';
    let header = null;
    try {
      header = JSON.parse(Buffer.from(token.split('.')[0], 'base64url').toString());
    } catch {
      // An opaque token.
    }
    return { tools, whoami, add_todo: add, whoami_after: whoamiAfter, header, token };
  } finally {
    await client.close();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [url, id, secret, issuer] = process.argv.slice(2);
  console.log(JSON.stringify(await tsFlow(url, id, secret, issuer)));
}
