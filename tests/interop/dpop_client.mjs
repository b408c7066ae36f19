// A real DPoP client (oauth4webapi) against oidc-provider and the todo
// server: a DPoP-bound token from the client_credentials grant, then MCP
// calls with a proof each, following the server's use_dpop_nonce answer.
import * as oauth from 'oauth4webapi';

const insecure = { [oauth.allowInsecureRequests]: true };

/** The text of a tools/call answer (JSON, or one SSE event). */
function toolResult(text) {
  const data = text.trim().startsWith('{')
    ? text
    : text.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('');
  const msg = JSON.parse(data);
  return JSON.parse(msg.result.content[0].text);
}

function mcpRequest(tool) {
  const headers = new Headers({
    'Content-Type': 'application/json',
    Accept: 'application/json, text/event-stream',
    'MCP-Protocol-Version': '2026-07-28',
    'Mcp-Method': 'tools/call',
    'Mcp-Name': tool,
  });
  const body = JSON.stringify({
    jsonrpc: '2.0', id: 1, method: 'tools/call',
    params: {
      name: tool, arguments: {},
      _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
    },
  });
  return { headers, body };
}

export async function dpopFlow({ issuer, clientId, secret, resource }) {
  const issuerUrl = new URL(issuer);
  const as = await oauth.processDiscoveryResponse(issuerUrl, await oauth.discoveryRequest(issuerUrl, insecure));
  const client = { client_id: clientId };
  const keyPair = await oauth.generateKeyPair('ES256');
  const DPoP = oauth.DPoP(client, keyPair);
  const tokenResponse = await oauth.clientCredentialsGrantRequest(
    as, client, oauth.ClientSecretBasic(secret),
    { resource, scope: 'todo:read todo:write' },
    { DPoP, ...insecure },
  );
  const tokens = await oauth.processClientCredentialsResponse(as, client, tokenResponse);
  const payload = JSON.parse(Buffer.from(tokens.access_token.split('.')[1], 'base64url').toString());

  // whoami with a proof; the first answer asks for a nonce, the client retries.
  let captured;
  let nonceRetries = 0;
  const call = async (tool) => {
    const { headers, body } = mcpRequest(tool);
    const opts = {
      DPoP,
      ...insecure,
      [oauth.customFetch]: (url, init) => {
        captured = { url, headers: new Headers(init.headers), body };
        return fetch(url, init);
      },
    };
    let res;
    try {
      res = await oauth.protectedResourceRequest(tokens.access_token, 'POST', new URL(resource), headers, body, opts);
    } catch (e) {
      if (!oauth.isDPoPNonceError(e)) throw e;
      nonceRetries += 1;
      res = await oauth.protectedResourceRequest(tokens.access_token, 'POST', new URL(resource), headers, body, opts);
    }
    return { status: res.status, nonce: res.headers.get('dpop-nonce'), result: toolResult(await res.text()) };
  };
  const whoami = await call('whoami');
  const whoamiAgain = await call('whoami');

  // The last request again, byte for byte: a replayed proof.
  const replay = await fetch(captured.url, { method: 'POST', headers: captured.headers, body: captured.body });
  // The bound token as a Bearer token.
  const { headers: plain, body } = mcpRequest('whoami');
  plain.set('Authorization', `Bearer ${tokens.access_token}`);
  const bearer = await fetch(resource, { method: 'POST', headers: plain, body });
  return {
    token_type: tokens.token_type,
    cnf: payload.cnf,
    whoami,
    whoami_again: whoamiAgain,
    nonce_retries: nonceRetries,
    replay: { status: replay.status, www: replay.headers.get('www-authenticate') },
    bearer: { status: bearer.status, www: bearer.headers.get('www-authenticate') },
  };
}
